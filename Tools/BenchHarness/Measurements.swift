import Foundation
import Synthetic
import Ticketlog
import ToolSupport

/// One timed run's result: a rate, and the rates of its first and last tenth when it has them.
struct Rate {
    var events: Int
    var seconds: Double
    var first10: Double?
    var last10: Double?
    var perSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
}

/// The Swift side of the benchmark: the seeded corpus, and each measurement of the engine.
enum Measurements {
    /// The corpus: the synthetic desk (seed 42, a ticket per 100 events), in generation order.
    static func corpus(events: Int) -> some Sequence<(stream: StreamID, event: ProposedEvent)> {
        SyntheticDesk(.init(tickets: max(1, events / 100), seed: 42, meanMessagesPerTicket: 86)).events().prefix(events)
            .lazy.map { ($0.stream, $0.event) }
    }

    /// Writes the corpus for the baselines, one event per line (stream, version, type, the
    /// event's JSON as `ticketlog export` writes it); returns the JSON bytes.
    static func writeCorpus(events: Int, to path: String) throws -> Int {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let file = FileHandle(forWritingAtPath: path) else { throw ToolError("cannot write \(path)") }
        defer { try? file.close() }
        var versions: [StreamID: Int] = [:]
        var buffer = Data()
        var bytes = 0
        for (stream, event) in corpus(events: events) {
            versions[stream, default: 0] += 1
            let json = try EventLine(stream: stream, event: event).json()
            bytes += json.count
            buffer.append(contentsOf: "\(stream.rawValue)\t\(versions[stream]!)\t\(event.type.rawValue)\t".utf8)
            buffer.append(contentsOf: json)
            buffer.append(0x0a)
            if buffer.count > 1 << 20 {
                try file.write(contentsOf: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try file.write(contentsOf: buffer)
        return bytes
    }

    /// Appends the corpus 1000 events per append (one transaction each), NORMAL, projections
    /// inline (or, with `inlineProjections` false, events only). Only the appends are timed
    /// (generating the events is not).
    static func batchedAppend(
        events: Int, path: String, compressionLevel: Int? = nil, inlineProjections: Bool = true
    ) async throws -> Rate {
        var configuration = EventStore.Configuration()
        if let compressionLevel { configuration.compressionLevel = compressionLevel }
        configuration.durability = .normal
        configuration.inlineProjections = inlineProjections
        let store = try EventStore(path: path, configuration: configuration)
        let tenth = max(1, events / 10)
        var timed = Duration.zero
        var first10: Double?
        var lastStart: (events: Int, time: Duration)?
        var done = 0
        var batch: [(StreamID, ProposedEvent)] = []
        batch.reserveCapacity(1_000)
        func flush() async throws {
            let start = ContinuousClock.now
            for result in await store.append(StreamAppend.runs(batch[...])) { _ = try result.get() }
            timed += ContinuousClock.now - start
            done += batch.count
            batch.removeAll(keepingCapacity: true)
            if first10 == nil, done >= tenth { first10 = Double(done) / timed.seconds }
            if lastStart == nil, done >= events - tenth - 1_000 { lastStart = (done, timed) }
        }
        for item in corpus(events: events) {
            batch.append(item)
            if batch.count == 1_000 { try await flush() }
        }
        if !batch.isEmpty { try await flush() }
        let last10 = lastStart.map { Double(done - $0.events) / (timed - $0.time).seconds }
        return Rate(events: done, seconds: timed.seconds, first10: first10, last10: last10)
    }

    /// 16 tasks appending one event per append, FULL durability: group commit at work.
    static func concurrentSingles(events: Int, path: String) async throws -> Rate {
        var configuration = EventStore.Configuration()
        configuration.durability = .full
        let store = try EventStore(path: path, configuration: configuration)
        let items = Array(corpus(events: events))
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var index = worker
                    while index < items.count {
                        try await store.append(items[index].event, to: items[index].stream)
                        index += 16
                    }
                }
            }
            try await group.waitForAll()
        }
        return Rate(events: items.count, seconds: (ContinuousClock.now - start).seconds)
    }

    /// Append → subscriber latency: one appender (NORMAL), one subscriber; milliseconds p50, p99.
    static func subscriberLatency(events: Int, path: String) async throws -> (p50: Double, p99: Double) {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        let store = try EventStore(path: path, configuration: configuration)
        let items = Array(corpus(events: events))
        let clock = ContinuousClock()
        let origin = clock.now
        let received = Task {
            var subscription = store.subscribe(from: 1).makeAsyncIterator()
            var times: [Duration] = []
            times.reserveCapacity(items.count)
            while times.count < items.count, (try await subscription.nextEvent(timeout: .seconds(30))) != nil {
                times.append(clock.now - origin)
            }
            return times
        }
        var sent: [Duration] = []
        for item in items {
            sent.append(clock.now - origin)
            try await store.append(item.event, to: item.stream)
        }
        let arrivals = try await received.value
        let latencies = zip(sent, arrivals).map { ($1 - $0).seconds * 1_000 }.sorted()
        guard !latencies.isEmpty else { return (0, 0) }
        return (latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)])
    }

    /// Brings the projections of an events-only log up to date; the time it took.
    static func catchUp(path: String, events: Int) async throws -> Rate {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.inlineProjections = false
        let store = try EventStore(path: path, configuration: configuration)
        let start = ContinuousClock.now
        try await store.catchUpProjections()
        return Rate(events: events, seconds: (ContinuousClock.now - start).seconds)
    }

    /// The events table and its indexes, and the whole file (projections and WAL included), in
    /// bytes (SQLite's page statistics).
    static func bytes(path: String) async throws -> (events: Int64, file: Int64) {
        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        configuration.createIfMissing = false
        let statistics = try await EventStore(path: path, configuration: configuration).statistics()
        return (statistics.eventBytes, statistics.fileBytes)
    }
}
