import Foundation

/// An append, validated and encoded outside the write transaction (so concurrent appenders
/// encode and compress in parallel); the writer only chains and inserts.
struct PreparedAppend: Sendable {
    struct Event: Sendable {
        var proposed: ProposedEvent
        /// The canonical JSON: what the chain hashes.
        var canonical: [UInt8]
        /// The stored body (``StoredBody``), compressed with `codec`.
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

    /// The UUID in an `events.id` column; `nil` unless it holds 16 bytes.
    init?(databaseBytes bytes: Data) {
        guard bytes.count == 16 else { return nil }
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) { $0.copyBytes(from: bytes) }
        self.init(uuid: uuid)
    }
}
