extension EventStore {
    /// Every event from `position` on (inclusive): first those already stored, then each new one
    /// as it is committed. Never skips a position and never repeats one; ends only when the
    /// iterating task is cancelled (the iterator then returns `nil`) or a read fails (it throws).
    public func subscribe(from position: Int64 = 1) -> EventSubscription {
        EventSubscription(store: self, start: max(1, position))
    }
}

/// The events of a log from a position on, catching up and then following live appends.
/// See ``EventStore/subscribe(from:)``.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let store: EventStore
    let start: Int64
    /// How many events one catch-up read fetches.
    var pageSize = 512

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, next: start, pageSize: pageSize)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: EventStore
        /// The position to deliver next.
        var next: Int64
        let pageSize: Int
        var buffer: [RecordedEvent] = []
        var bufferIndex = 0

        public mutating func next() async throws -> RecordedEvent? {
            try await nextEvent(within: nil)
        }

        /// The next event, or `nil` when none arrived within `timeout` — the subscription goes on
        /// and can be asked again (e.g. to send a keep-alive meanwhile). Also `nil` when the task
        /// is cancelled.
        public mutating func nextEvent(timeout: Duration) async throws -> RecordedEvent? {
            try await nextEvent(within: timeout)
        }

        private mutating func nextEvent(within timeout: Duration?) async throws -> RecordedEvent? {
            let clock = ContinuousClock()
            let deadline = timeout.map { clock.now + $0 }
            while bufferIndex == buffer.count {
                if Task.isCancelled { return nil }
                do {
                    buffer = try await store.readAll(from: next, limit: pageSize)
                } catch is CancellationError {
                    return nil
                }
                bufferIndex = 0
                if buffer.isEmpty {
                    var wait = store.configuration.subscriptionPollInterval
                    if let deadline {
                        let remaining = deadline - clock.now
                        if remaining <= .zero { return nil }
                        wait = Swift.min(wait, remaining)
                    }
                    await store.notifier.wait(beyond: next - 1, timeout: wait)
                }
            }
            let event = buffer[bufferIndex]
            bufferIndex += 1
            // Positions are gap-free and read in order, so this holds unless the file is damaged.
            guard event.position == next else {
                throw EventStoreError.corrupt(
                    "the log skips from position \(next - 1) to \(event.position)", position: next)
            }
            next += 1
            return event
        }
    }
}
