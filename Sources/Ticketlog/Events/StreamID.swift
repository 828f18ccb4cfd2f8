/// The identity of one event stream. Every ticket is one stream, named like its Stream Chat
/// channel: `ticket-{id}`.
///
/// A stream id is 1 to 64 characters of `a-z`, `A-Z`, `0-9`, `_` and `-`, the characters a Stream
/// Chat channel id may carry, so the log and the chat channel always share one name.
public struct StreamID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    /// Returns `nil` when `rawValue` is not a valid stream id.
    public init?(rawValue: String) {
        guard Self.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// For names read back from the log's own tables, which only ever hold validated ids.
    init(unchecked rawValue: String) {
        self.rawValue = rawValue
    }

    /// The stream of the ticket `ticketID`, `ticket-{ticketID}`; `nil` when the result is not a
    /// valid stream id.
    /// The stream of ``ErasurePerformed`` events (issue 17): not a ticket.
    public static let erasures = StreamID(rawValue: "erasures")!

    public static func ticket(_ ticketID: String) -> StreamID? {
        StreamID(rawValue: "ticket-\(ticketID)")
    }

    /// The part after `ticket-`, when this is a ticket stream.
    public var ticketID: String? {
        rawValue.hasPrefix("ticket-") ? String(rawValue.dropFirst("ticket-".count)) : nil
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let id = StreamID(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "invalid stream id \(raw.debugDescription)")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    static func isValid(_ raw: String) -> Bool {
        let bytes = raw.utf8
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }
}
