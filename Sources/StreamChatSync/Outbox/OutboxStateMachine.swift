import Ticketlog

/// The outbound sync as a pure state machine: which request to send next, what a response
/// means, where the durable cursor may move. No network, no clock, no randomness of its own;
/// the driver feeds it events, responses and the time, and carries out its actions.
///
/// - **Order**: each channel (ticket) sends its events' requests strictly one after another;
///   channels proceed independently, so a channel waiting out a backoff holds up no other.
/// - **Retries**: a retryable failure (network error, 5xx, 429) waits `retryAfter` when the
///   server said (e.g. from `X-RateLimit-Reset`), else exponential backoff with full jitter,
///   then sends the same request again. "Already exists" counts as success.
/// - **Dead letters**: a permanent failure (other 4xx) gives up on that event (its remaining
///   requests are skipped), reports it, and the channel moves on.
/// - **Cursor**: the highest position such that it and every position before it were mirrored
///   or dead-lettered. Persisting it is the driver's job; after a restart everything after it
///   is sent again, which the deterministic ids make harmless.
public struct OutboxStateMachine: Sendable {
    public struct Configuration: Sendable {
        /// The first retry waits up to this many seconds; each further one up to twice as long.
        public var baseBackoff: Double = 0.5
        /// No wait is longer than this.
        public var maximumBackoff: Double = 60

        public init(baseBackoff: Double = 0.5, maximumBackoff: Double = 60) {
            self.baseBackoff = baseBackoff
            self.maximumBackoff = maximumBackoff
        }

        /// The retry policy these two numbers make.
        public var backoff: Backoff { Backoff(base: baseBackoff, maximum: maximumBackoff) }
    }

    /// What happened to a request.
    public enum Outcome: Sendable, Equatable {
        case success
        /// Try again later; `after` seconds when the server said how long.
        case retryable(after: Double?)
        case permanent(reason: String)
    }

    /// What the driver should do.
    public enum Action: Sendable, Equatable {
        case send(SendID, StreamChatRequest)
        case deadLetter(position: Int64, stream: StreamID, request: StreamChatRequest, reason: String)
        /// Persist the cursor: everything up to this position is done.
        case saveCursor(Int64)
    }

    /// Identifies one attempt of one request, to match its response.
    public struct SendID: Hashable, Sendable {
        public var stream: StreamID
        public var position: Int64
        public var requestIndex: Int
        public var attempt: Int
    }

    private struct Pending: Sendable {
        var position: Int64
        var requests: [StreamChatRequest]
        var next = 0
        var attempt = 1
    }

    private struct Channel: Sendable {
        var queue: [Pending] = []
        var inFlight: SendID?
        var notBefore: Double = 0
    }

    public let configuration: Configuration
    private var channels: [StreamID: Channel] = [:]
    /// Positions enqueued and not yet finished.
    private var unfinished: Set<Int64> = []
    /// The highest position enqueued so far.
    private var enqueuedUpTo: Int64
    public private(set) var cursor: Int64

    /// - Parameters:
    ///   - cursor: where the last run left off (events up to it are done).
    ///   - configuration: the retry policy.
    public init(cursor: Int64, configuration: Configuration = .init()) {
        self.cursor = cursor
        self.enqueuedUpTo = cursor
        self.configuration = configuration
    }

    /// Adds the next event (positions must come in order, each once) and its requests.
    public mutating func enqueue(_ event: RecordedEvent, requests: [StreamChatRequest]) {
        precondition(event.position > enqueuedUpTo, "events must be enqueued in position order")
        enqueuedUpTo = event.position
        if requests.isEmpty { return }  // nothing to mirror: done as soon as what precedes it is
        unfinished.insert(event.position)
        channels[event.stream, default: Channel()].queue.append(Pending(position: event.position, requests: requests))
    }

    /// Requests that may go out now (at most one per channel, at most `limit` in all, the
    /// channels with the oldest waiting events first), and a cursor move if any.
    public mutating func actions(now: Double, limit: Int = .max) -> [Action] {
        var actions: [Action] = []
        // Oldest event first: fair to every channel, and what moves the cursor soonest.
        let ready = channels.filter { $0.value.inFlight == nil && $0.value.notBefore <= now && !$0.value.queue.isEmpty }
            .sorted { $0.value.queue[0].position < $1.value.queue[0].position }
        for stream in ready.map(\.key).prefix(max(0, limit)) {
            guard var channel = channels[stream], let head = channel.queue.first else { continue }
            let id = SendID(stream: stream, position: head.position, requestIndex: head.next, attempt: head.attempt)
            channel.inFlight = id
            channels[stream] = channel
            actions.append(.send(id, head.requests[head.next]))
        }
        return actions + advanceCursor()
    }

    /// Records the response to `id` and returns what follows from it.
    public mutating func complete(_ id: SendID, _ outcome: Outcome, now: Double, random: Double) -> [Action] {
        guard var channel = channels[id.stream], channel.inFlight == id, var head = channel.queue.first else {
            return []
        }
        channel.inFlight = nil
        var actions: [Action] = []
        switch outcome {
        case .success:
            head.next += 1
            head.attempt = 1
            if head.next == head.requests.count {
                channel.queue.removeFirst()
                unfinished.remove(head.position)
            } else {
                channel.queue[0] = head
            }
        case .retryable(let after):
            channel.notBefore =
                now + configuration.backoff.delay(afterAttempt: head.attempt, random: random, serverSaid: after)
            head.attempt += 1
            channel.queue[0] = head
        case .permanent(let reason):
            actions.append(
                .deadLetter(
                    position: head.position, stream: id.stream, request: head.requests[head.next], reason: reason))
            channel.queue.removeFirst()
            unfinished.remove(head.position)
        }
        channels[id.stream] = channel.queue.isEmpty && channel.inFlight == nil ? nil : channel
        return actions + advanceCursor()
    }

    /// When the driver should call ``actions(now:limit:)`` again if nothing else happens (a channel's
    /// backoff ends); `nil` when nothing waits on time.
    public var nextWakeUp: Double? {
        channels.values.filter { $0.inFlight == nil && !$0.queue.isEmpty }.map(\.notBefore).min()
    }

    /// Whether everything enqueued is done.
    public var isIdle: Bool { unfinished.isEmpty }

    /// Requests sent and not answered yet.
    public var inFlightCount: Int { channels.values.filter { $0.inFlight != nil }.count }

    /// Events enqueued and not finished: the driver stops reading ahead beyond a bound.
    public var backlog: Int { unfinished.count }

    private mutating func advanceCursor() -> [Action] {
        let done = unfinished.min().map { $0 - 1 } ?? enqueuedUpTo
        guard done > cursor else { return [] }
        cursor = done
        return [.saveCursor(done)]
    }
}
