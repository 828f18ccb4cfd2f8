/// What ``EventStore/verify(anchor:progress:)`` found.
public struct VerificationReport: Sendable {
    /// The first problem, by position. `nil` when the whole log checks out.
    public var failure: VerificationFailure?
    /// Events whose chain link was checked and held.
    public var eventsVerified: Int64
    /// The newest position and its chain hash, as verified (`0` and the genesis hash when empty).
    public var headPosition: Int64
    public var headHash: String
    /// Things that are not wrong with the events but weaken the guarantees, e.g. a removed
    /// immutability trigger.
    public var warnings: [String]

    public var isValid: Bool { failure == nil }
}

/// A position and its chain hash recorded outside the file (a daily note, a published digest, an
/// acknowledgement): ``EventStore/verify(anchor:progress:)`` checks that the log still reaches it
/// with the same hash. Without one, a log cut back to an earlier, consistent state — a `-wal` file
/// deleted after a crash, an old backup put in its place — verifies as that earlier state.
public struct ChainAnchor: Hashable, Sendable, CustomStringConvertible {
    public var position: Int64
    public var hash: [UInt8]

    public init(position: Int64, hash: [UInt8]) {
        self.position = position
        self.hash = hash
    }

    /// `POSITION:HASH`, the hash as 64 hex digits (what `verify` prints as the head).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let position = Int64(parts[0]), position > 0, parts[1].utf8.count == 64,
            let hash = [UInt8](hexString: parts[1])
        else { return nil }
        self.init(position: position, hash: hash)
    }

    public var description: String { "\(position):\(hash.hexString)" }
}

/// The first place where the log is not what was written.
public struct VerificationFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable {
        /// An event's content (or a column) differs from what was chained.
        case edited
        /// Events are gone: a gap in positions or versions, or the log ends before its head.
        case missing
        /// Events are stored in another order than they were written.
        case reordered
        /// An event cannot be decoded: bad compression, bad JSON, unknown dictionary.
        case undecodable
        /// The file itself is damaged: SQLite cannot read the events' pages past this position
        /// (a damaged page, a truncated file).
        case damaged
    }

    public var position: Int64
    public var kind: Kind
    public var detail: String

    public init(position: Int64, kind: Kind, detail: String) {
        self.position = position
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "position \(position): \(kind.rawValue): \(detail)" }
}

/// How far a verification has come, for progress display.
public struct VerificationProgress: Sendable {
    public var eventsChecked: Int64
    public var totalEvents: Int64
}

extension VerificationReport: Encodable {
    private enum CodingKeys: String, CodingKey {
        case ok, eventsVerified, headPosition, headHash, failure, warnings
    }

    /// `{"ok", "eventsVerified", "headPosition", "headHash", "failure"?: {"position", "kind", "detail"}, "warnings"}`
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(isValid, forKey: .ok)
        try container.encode(eventsVerified, forKey: .eventsVerified)
        try container.encode(headPosition, forKey: .headPosition)
        try container.encode(headHash, forKey: .headHash)
        try container.encodeIfPresent(failure, forKey: .failure)
        try container.encode(warnings, forKey: .warnings)
    }
}

extension VerificationFailure: Encodable {
    private enum CodingKeys: String, CodingKey {
        case position, kind, detail
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(position, forKey: .position)
        try container.encode(kind.rawValue, forKey: .kind)
        try container.encode(detail, forKey: .detail)
    }
}
