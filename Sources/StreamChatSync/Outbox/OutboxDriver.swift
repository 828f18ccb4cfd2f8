import Foundation
import Logging
import Ticketlog

/// Runs the ``OutboxStateMachine`` against the log and a ``StreamChatClient``: reads events from the
/// destination's cursor on, sends their requests (channels in parallel, each in order), records
/// dead letters and moves the durable cursor in the log file.
public struct OutboxDriver: Sendable {
    public struct Configuration: Sendable {
        /// The cursor's and dead letters' key in the log file.
        public var destination = StreamChatDestination.mirror
        /// Requests in flight at once (one per channel at most).
        public var maximumInFlight = 16
        /// Events read ahead of the cursor at most.
        public var maximumBacklog = 2_000
        public var stateMachine = OutboxStateMachine.Configuration()

        public init() {}
    }

    let store: EventStore
    let client: StreamChatClient
    let configuration: Configuration
    let logger: Logger
    let random: @Sendable () -> Double

    public init(
        store: EventStore, client: StreamChatClient, configuration: Configuration = .init(), logger: Logger = .disabled,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
    ) {
        self.store = store
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.random = random
    }

    /// Mirrors until everything up to the log's head at the call is done; returns the cursor.
    @discardableResult
    public func runUntilCaughtUp() async throws -> Int64 {
        let target = try await store.headPosition()
        return try await run { machine in machine.cursor >= target && machine.isIdle }
    }

    /// Mirrors until the task is cancelled.
    public func run() async throws {
        _ = try await run { _ in Task.isCancelled }
    }

    /// Mirrors until the task is cancelled, in one process at a time among those sharing the
    /// log (`EventStore.whileLeading(_:_:)`, named after the destination): on
    /// PostgreSQL the others wait, and one of them goes on from the durable cursor within
    /// about a second of the mirroring process dying.
    public func runWhileLeading() async throws {
        try await store.whileLeading(configuration.destination) { try await run() }
    }

    private func run(until done: (OutboxStateMachine) -> Bool) async throws -> Int64 {
        let clock = ContinuousClock()
        let start = clock.now
        func now() -> Double { (clock.now - start).seconds }
        var machine = OutboxStateMachine(
            cursor: try await store.syncCursor(configuration.destination), configuration: configuration.stateMachine)
        var events = store.subscribe(from: machine.cursor + 1).makeAsyncIterator()
        let client = self.client
        return try await withThrowingTaskGroup(
            of: (OutboxStateMachine.SendID, Result<StreamChatClient.Response, any Error>).self
        ) { group in
            var inFlight = 0
            while !done(machine) {
                // Read ahead what is already in the log, without waiting.
                while machine.backlog < configuration.maximumBacklog,
                    let event = try await events.nextEvent(timeout: .zero)
                {
                    machine.enqueue(event, requests: try await requests(for: event))
                }
                for action in machine.actions(now: now(), limit: configuration.maximumInFlight - inFlight) {
                    if case .send(let id, let request) = action {
                        inFlight += 1
                        group.addTask {
                            do {
                                var response = try await client.send(request)
                                // A hard delete of what Stream does not have (never mirrored, or
                                // deleted before): nothing is left to delete.
                                if request.isHardDelete && response.status == 404 { response.status = 200 }
                                return (id, .success(response))
                            } catch {
                                return (id, .failure(error))
                            }
                        }
                    } else {
                        try await perform(action)
                    }
                }
                if done(machine) { break }
                if inFlight > 0 {
                    guard let (id, result) = try await group.next() else { continue }
                    inFlight -= 1
                    let outcome = ResponseClassifier.outcome(result, now: store.configuration.clock().date)
                    if case .permanent(let reason) = outcome {
                        logger.warning(
                            "Stream refused a request",
                            metadata: ["ticketlog.position": "\(id.position)", "ticketlog.reason": "\(reason)"])
                    }
                    for action in machine.complete(id, outcome, now: now(), random: random()) {
                        try await perform(action)
                    }
                } else {
                    // Nothing in flight: wait for a new event or the end of a backoff.
                    let wait = machine.nextWakeUp.map { max(0, $0 - now()) } ?? 1
                    if let event = try await events.nextEvent(timeout: .milliseconds(Int(min(wait, 1) * 1000))) {
                        machine.enqueue(event, requests: try await requests(for: event))
                    }
                    if Task.isCancelled { break }
                }
            }
            group.cancelAll()
            return machine.cursor
        }
    }

    /// What re-driving a dead letter did.
    public enum RedriveOutcome: Sendable, Equatable {
        /// Every request of the event succeeded; the dead letter is gone.
        case delivered
        /// Stream refused again; the dead letter stays, with this reason.
        case refused(String)
    }

    /// Sends a dead-lettered event again (after the cause was fixed in Stream, e.g. a missing
    /// user or channel created), retrying network errors, 5xx and 429 a few times. It goes out
    /// after events that followed it in its channel: re-driving is an operator's decision.
    ///
    /// - Throws: ``StreamChatError`` (`noDeadLetter`) when there is no dead letter at `position`.
    public func redrive(position: Int64) async throws -> RedriveOutcome {
        guard
            let letter = try await store.deadLetters(configuration.destination).first(where: { $0.position == position }
            ),
            let event = try await store.readAll(from: position, limit: 1).first
        else {
            throw StreamChatError(
                .noDeadLetter, "no dead letter at position \(position) for \(configuration.destination)")
        }
        for request in try await requests(for: event) {
            let (_, outcome) = try await client.sendRetrying(
                request, attempts: 5, backoff: configuration.stateMachine.backoff,
                now: { store.configuration.clock().date },
                random: random)
            switch outcome {
            case .success:
                continue
            case .permanent(let reason):
                try await store.recordDeadLetter(
                    DeadLetter(
                        destination: letter.destination, position: position, stream: letter.stream,
                        request: request.description,
                        reason: reason, at: store.configuration.clock()))
                return .refused(reason)
            case .retryable:
                return .refused("Stream kept failing (network, 5xx or 429) after 5 attempts; try again later")
            }
        }
        try await store.removeDeadLetter(configuration.destination, position: position)
        return .delivered
    }

    /// The Stream calls of `event`. An edit or delete of a message that was posted in Stream
    /// addresses the message by Stream's own id, so it looks up where the post came from.
    private func requests(for event: RecordedEvent) async throws -> [StreamChatRequest] {
        if case .erasurePerformed(let erasure) = event.payload {
            // Erased content must not live on in Stream: hard-delete its copies there.
            return OutboundMapper.hardDeletes(try await store.erasedContent(erasure))
        }
        let target: String? =
            switch event.payload {
            case .messageEdited(let edited): edited.messageID
            case .messageDeleted(let deleted): deleted.messageID
            default: nil
            }
        guard let target, case .local = event.origin, let message = try await store.message(target, in: event.stream),
            let posting = try await store.readAll(from: message.position, limit: 1).first
        else { return OutboundMapper.requests(for: event) }
        let bornInStream = if case .streamChat = posting.origin { true } else { false }
        return OutboundMapper.requests(for: event, messageBornInStream: bornInStream)
    }

    private func perform(_ action: OutboxStateMachine.Action) async throws {
        switch action {
        case .saveCursor(let position):
            try await store.saveSyncCursor(configuration.destination, position: position)
        case .deadLetter(let position, let stream, let request, let reason):
            try await store.recordDeadLetter(
                DeadLetter(
                    destination: configuration.destination, position: position, stream: stream,
                    request: request.description,
                    reason: reason, at: store.configuration.clock()))
        case .send:
            break
        }
    }
}
