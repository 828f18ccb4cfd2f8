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
    /// When the events were recorded, for an append that wrote them (`nil` for a retry).
    var recordedAt: Timestamp?

    public init(positions: ClosedRange<Int64>, streamVersion: Int64, wasAlreadyStored: Bool) {
        self.positions = positions
        self.streamVersion = streamVersion
        self.wasAlreadyStored = wasAlreadyStored
    }
}

/// One stream's share of a multi-stream ``EventStore/append(_:)``.
public struct StreamAppend: Sendable {
    public var stream: StreamID
    public var events: [ProposedEvent]
    public var expectedVersion: ExpectedVersion

    public init(stream: StreamID, events: [ProposedEvent], expectedVersion: ExpectedVersion = .any) {
        self.stream = stream
        self.events = events
        self.expectedVersion = expectedVersion
    }
}

extension StreamAppend {
    /// Groups events into appends, one per run of consecutive events of the same stream, so
    /// that appending the result keeps the events' order.
    public static func runs(_ events: some Sequence<(StreamID, ProposedEvent)>) -> [StreamAppend] {
        var runs: [StreamAppend] = []
        for (stream, event) in events {
            if let last = runs.last, last.stream == stream {
                runs[runs.count - 1].events.append(event)
            } else {
                runs.append(StreamAppend(stream: stream, events: [event]))
            }
        }
        return runs
    }
}
