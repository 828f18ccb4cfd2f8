import Foundation

/// One event as a line of NDJSON for import and for generated data: the canonical body without
/// `recordedAt` (the importing log stamps its own). Lines written by `ticketlog read` or by an
/// NDJSON export are accepted too; their `position`, `version` and `recordedAt` are ignored.
public struct EventLine: Hashable, Sendable {
    public var stream: StreamID
    public var event: ProposedEvent

    public init(stream: StreamID, event: ProposedEvent) {
        self.stream = stream
        self.event = event
    }

    /// Marks an encoder or decoder working on event lines rather than stored bodies.
    static let userInfoKey = CodingUserInfoKey(rawValue: "ticketlog.eventLine")!

    /// Parses one line.
    ///
    /// - Throws: ``EventStoreError`` with ``EventStoreError/Code/invalidEvent`` and a message
    ///   naming what is wrong (malformed JSON, missing field, invalid stream id...).
    public init(json line: some Collection<UInt8>) throws {
        let decoder = JSONDecoder()
        decoder.userInfo[Self.userInfoKey] = true
        do {
            let body = try decoder.decode(EventBody.self, from: Data(line))
            self.init(stream: body.stream, event: body.proposed)
        } catch let error as DecodingError {
            throw EventStoreError(code: .invalidEvent, message: error.readableDescription, cause: error)
        } catch {
            throw EventStoreError(code: .invalidEvent, message: "not an event: \(error)", cause: error)
        }
    }

    /// The line, canonical JSON without a trailing newline.
    public func json() throws -> [UInt8] {
        let encoder = CanonicalJSON.encoder()
        encoder.userInfo[Self.userInfoKey] = true
        return Array(
            try encoder.encode(EventBody(event, stream: stream, recordedAt: Timestamp(microsecondsSinceEpoch: 0))))
    }
}
