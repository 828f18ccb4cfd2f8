extension EventStore {
    /// Every event from `position` on (inclusive): first those already stored, then each new one
    /// as it is committed. Never skips a position and never repeats one; ends only when the
    /// iterating task is cancelled (the iterator then returns `nil`) or a read fails (it throws).
    ///
    /// On a shared database the subscriber sees every node's appends: a notification at each
    /// commit wakes it to read by position (a lost one costs at most
    /// ``Configuration/subscriptionPollInterval``), and while the server is away it waits and
    /// reads again, logging a warning each time.
    public func subscribe(from position: Int64 = 1) -> EventSubscription {
        shared?.database.startListening(notifier)
        return EventSubscription(source: self, start: max(1, position))
    }
}

/// What a subscription reads: a log on either backend, by position, and a signal that it grew.
package protocol EventSource: Sendable {
    /// Up to `limit` events from `position` on (inclusive), in position order.
    func events(from position: Int64, limit: Int) async throws -> [RecordedEvent]
    /// Returns once the log may have grown beyond `position` (a hint: the subscription reads
    /// again either way), the task is cancelled, or `timeout` passed.
    func waitForEvents(beyond position: Int64, timeout: Duration) async
    /// How long a subscription waits for that signal before it reads again regardless.
    var pollInterval: Duration { get }
}

extension EventStore: EventSource {
    package func events(from position: Int64, limit: Int) async throws -> [RecordedEvent] {
        do {
            return try await readAll(from: position, limit: limit)
        } catch let error where shared?.database.isUnavailable(error) == true {
            logger.warning(
                "A subscription cannot read from the database; it waits and reads again",
                metadata: ["ticketlog.database": "\(path)", "ticketlog.error": "\(error)"])
            return []
        }
    }

    package func waitForEvents(beyond position: Int64, timeout: Duration) async {
        await notifier.wait(beyond: position, timeout: timeout)
    }

    package var pollInterval: Duration { configuration.subscriptionPollInterval }
}

/// The events of a log from a position on, catching up and then following live appends.
/// See ``EventStore/subscribe(from:)``.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let source: any EventSource
    let start: Int64
    /// How many events one catch-up read fetches.
    var pageSize = 512

    package init(source: any EventSource, start: Int64) {
        self.source = source
        self.start = start
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(source: source, next: start, pageSize: pageSize)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let source: any EventSource
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
                    buffer = try await source.events(from: next, limit: pageSize)
                } catch is CancellationError {
                    return nil
                }
                bufferIndex = 0
                if buffer.isEmpty {
                    var wait = source.pollInterval
                    if let deadline {
                        let remaining = deadline - clock.now
                        if remaining <= .zero { return nil }
                        wait = Swift.min(wait, remaining)
                    }
                    await source.waitForEvents(beyond: next - 1, timeout: wait)
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

extension EventStore {
    /// The events of `stream` after `position` (a position of the whole log, e.g. the last one a
    /// client saw): first those stored, then each new one as it is committed, in order, each
    /// once. The stream need not exist yet. Ends as ``subscribe(from:)`` does.
    public func subscribe(to stream: StreamID, after position: Int64) -> StreamSubscription {
        // On a shared database, woken by every node's commits as the log's subscription is.
        shared?.database.startListening(notifier)
        return StreamSubscription(store: self, stream: stream, after: max(0, position))
    }
}

/// The events of one stream after a position, catching up and then following live appends. See
/// ``EventStore/subscribe(to:after:)``.
public struct StreamSubscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent

    let store: EventStore
    let stream: StreamID
    let after: Int64

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, stream: stream, after: after)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: EventStore
        let stream: StreamID
        let after: Int64
        /// The stream's key and the version delivered last, once the stream exists.
        var cursor: (key: Int64, version: Int64)?
        /// The log's head as of the last read: what to wait beyond when nothing is new.
        var head: Int64 = 0
        var buffer: [RecordedEvent] = []
        var bufferIndex = 0

        init(store: EventStore, stream: StreamID, after: Int64) {
            self.store = store
            self.stream = stream
            self.after = after
        }

        public mutating func next() async throws -> RecordedEvent? {
            try await nextEvent(within: nil)
        }

        /// The next event, or `nil` when none arrived within `timeout` (the subscription goes on)
        /// or the task is cancelled.
        public mutating func nextEvent(timeout: Duration) async throws -> RecordedEvent? {
            try await nextEvent(within: timeout)
        }

        private mutating func nextEvent(within timeout: Duration?) async throws -> RecordedEvent? {
            let clock = ContinuousClock()
            let deadline = timeout.map { clock.now + $0 }
            while bufferIndex == buffer.count {
                if Task.isCancelled { return nil }
                let (store, stream, after, cursor) = (self.store, self.stream, self.after, self.cursor)
                let page: (events: [RecordedEvent], cursor: (key: Int64, version: Int64)?, head: Int64)
                do {
                    page = try await store.readSession { session in
                        var cursor = cursor
                        if cursor == nil,
                            let key = try session.value(
                                "SELECT key FROM streams WHERE name = ?", [.text(stream.rawValue)]
                            ).integer
                        {
                            let seen = try session.value(
                                "SELECT coalesce(max(version), 0) FROM events WHERE stream = ? AND position <= ?",
                                [.integer(key), .integer(after)]
                            ).integer
                            cursor = (key, seen ?? 0)
                        }
                        let head = try session.value("SELECT coalesce(max(position), 0) FROM events").integer ?? 0
                        guard let cursor else { return ([], nil, head) }
                        let events = try store.events(
                            session, where: "stream = ? AND version > ? ORDER BY version LIMIT 256",
                            [.integer(cursor.key), .integer(cursor.version)])
                        return (events, cursor, head)
                    }
                } catch is CancellationError {
                    return nil
                }
                self.cursor = page.cursor
                head = page.head
                buffer = page.events
                bufferIndex = 0
                if let last = buffer.last, let key = self.cursor?.key { self.cursor = (key, last.version) }
                if buffer.isEmpty {
                    var wait = store.configuration.subscriptionPollInterval
                    if let deadline {
                        let remaining = deadline - clock.now
                        if remaining <= .zero { return nil }
                        wait = Swift.min(wait, remaining)
                    }
                    await store.notifier.wait(beyond: head, timeout: wait)
                }
            }
            let event = buffer[bufferIndex]
            bufferIndex += 1
            return event
        }
    }
}
