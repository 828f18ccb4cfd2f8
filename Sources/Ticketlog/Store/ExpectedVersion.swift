/// What an append expects of its stream (optimistic concurrency).
public enum ExpectedVersion: Hashable, Sendable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream must be at exactly this version (its last event has this version).
    case exact(Int64)

    func accepts(_ actual: Int64) -> Bool {
        switch self {
        case .any: true
        case .noStream: actual == 0
        case .exact(let version): actual == version
        }
    }

    public var description: String {
        switch self {
        case .any: "any version"
        case .noStream: "no stream"
        case .exact(let version): "version \(version)"
        }
    }
}

/// Where an append landed.
public struct AppendResult: Hashable, Sendable {
    /// The global positions of the appended events.
    public var positions: ClosedRange<Int64>
    /// The stream's version after the append (the version of its last event).
    public var streamVersion: Int64
    /// `true` when every event was already stored (an idempotent retry): nothing was written and
    /// the positions are those of the original append.
    public var wasAlreadyStored: Bool

    public init(positions: ClosedRange<Int64>, streamVersion: Int64, wasAlreadyStored: Bool) {
        self.positions = positions
        self.streamVersion = streamVersion
        self.wasAlreadyStored = wasAlreadyStored
    }
}
