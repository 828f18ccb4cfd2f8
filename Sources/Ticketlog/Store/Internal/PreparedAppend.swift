import Foundation

/// An append, validated and encoded outside the write transaction (so concurrent appenders
/// encode and compress in parallel); the writer only chains and inserts.
struct PreparedAppend: Sendable {
    struct Event: Sendable {
        var proposed: ProposedEvent
        var canonical: [UInt8]
        var codec: Int64
        var blob: [UInt8]
    }

    var stream: StreamID
    var expectedVersion: ExpectedVersion
    var recordedAt: Timestamp
    var events: [Event]
}

extension UUID {
    /// The 16 bytes of the UUID, as the `events.id` column stores them.
    var databaseBytes: Data {
        withUnsafeBytes(of: uuid) { Data($0) }
    }
}
