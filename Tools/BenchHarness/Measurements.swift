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
        events: Int, path: String, compressionLevel: Int? = nil, inlineProjections: Bool = true,
        masterKey: MasterKey? = nil
    ) async throws -> Rate {
        var configuration = EventStore.Configuration()
        configuration.masterKey = masterKey
        if let compressionLevel { configuration.compressionLevel = compressionLevel }
        configuration.durability = .normal
        configuration.inlineProjections = inlineProjections
        let store = try EventStore(path: path, configuration: configuration)
        return try await timedBatches(events: events) { appends in
            for result in await store.append(appends) { _ = try result.get() }
        }
    }

    /// The corpus appended in batches of 1,000 events by `append`, only the appends timed: the
    /// rate overall and over the first and last tenth.
    static func timedBatches(events: Int, append: ([StreamAppend]) async throws -> Void) async throws -> Rate {
        let tenth = max(1, events / 10)
        var timed = Duration.zero
        var first10: Double?
        var lastStart: (events: Int, time: Duration)?
        var done = 0
        var batch: [(StreamID, ProposedEvent)] = []
        batch.reserveCapacity(1_000)
        func flush() async throws {
            let start = ContinuousClock.now
            try await append(StreamAppend.runs(batch[...]))
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
        return try await sixteenWriters(events: events) { try await store.append($1, to: $0) }
    }

    /// The corpus appended one event at a time by 16 tasks at once (every 16th event each).
    static func sixteenWriters(
        events: Int, append: @escaping @Sendable (StreamID, ProposedEvent) async throws -> Void
    ) async throws -> Rate {
        let items = Array(corpus(events: events))
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for index in stride(from: worker, to: items.count, by: 16) {
                        try await append(items[index].stream, items[index].event)
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

/// Issue 16 on the bench's log: signing, proofs and bundles, and checking against a checkpoint.
enum TransparencyMeasurements {
    struct Rows {
        var events: Int64 = 0
        var signMilliseconds = 0.0
        var proofMillisecondsP50 = 0.0
        var proofMillisecondsP99 = 0.0
        var proofBytes = 0
        var ticketEvents = 0
        var ticketBundleSeconds = 0.0
        var ticketBundleBytes = 0
        var verifyAgainstCheckpoint = Rate(events: 0, seconds: 0)
        /// What the tree adds to each append, measured alone: a leaf hash over the event's line
        /// and one node hash (a tree of n leaves has n − 1 nodes), in nanoseconds per event.
        var treeNanosecondsPerEvent = 0.0
    }

    /// The tree's work per event, alone: `SHA-256(0x00 ‖ line)` and one node hash for each line
    /// of an NDJSON export (the writer finishes a leaf hash its caller started and adds it to the
    /// right edge: no more than this).
    static func treeWork(exportedEvents path: String) throws -> Double {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let lines = data.split(separator: 0x0a).map { Array($0) }
        var node = MerkleTree.emptyRoot
        let start = ContinuousClock.now
        for line in lines {
            node = MerkleTree.nodeHash(node, MerkleTree.leafHash(line))
        }
        let seconds = (ContinuousClock.now - start).seconds
        guard node != MerkleTree.emptyRoot, !lines.isEmpty else { throw ToolError("no lines in \(path)") }
        return seconds * 1e9 / Double(lines.count)
    }

    /// Appends a ticket of 1,000 events spread over 10,000 (one append in ten) to the log at
    /// `path`, then measures: signing a checkpoint, an inclusion proof for one event (300 random
    /// positions), the evidence bundle of the 1,000-event ticket, and `verify --checkpoint`.
    static func measure(path: String) async throws -> Rows {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        let store = try EventStore(path: path, configuration: configuration)
        let big = StreamID.ticket("bench-1000")!
        let agent = Actor(id: "sam", role: .agent)
        var appends: [StreamAppend] = []
        for index in 0..<10_000 {
            let stream = index % 10 == 0 ? big : StreamID.ticket("bench-filler-\(index % 97)")!
            appends.append(
                StreamAppend(
                    stream: stream,
                    events: [
                        ProposedEvent(
                            actor: agent,
                            payload: .messagePosted(
                                MessagePosted(
                                    messageID: "m-\(index)",
                                    text: "Update \(index): the cut is uploaded, please review the colour pass.")))
                    ]))
            if appends.count == 1_000 {
                for result in await store.append(appends) { _ = try result.get() }
                appends.removeAll(keepingCapacity: true)
            }
        }
        var rows = Rows()
        let signer = try NoteSigner(generatingFor: "bench.example/ticketlog")
        var signings: [Double] = []
        var checkpoint: StoredCheckpoint?
        for _ in 0..<10 {
            let start = ContinuousClock.now
            checkpoint = try await store.signCheckpoint(with: signer)
            signings.append((ContinuousClock.now - start).seconds * 1_000)
        }
        let signed = checkpoint!
        rows.events = signed.checkpoint.size
        rows.signMilliseconds = signings.sorted()[signings.count / 2]
        var random = SplitMix(seed: 16)
        var proofTimes: [Double] = []
        var proofBytes = 0
        for _ in 0..<300 {
            let position = Int64.random(in: 1...signed.checkpoint.size, using: &random)
            let start = ContinuousClock.now
            let proof = try await store.inclusionProof(position: position, in: signed)
            proofTimes.append((ContinuousClock.now - start).seconds * 1_000)
            proofBytes += proof.text.utf8.count
        }
        proofTimes.sort()
        rows.proofMillisecondsP50 = proofTimes[proofTimes.count / 2]
        rows.proofMillisecondsP99 = proofTimes[proofTimes.count * 99 / 100]
        rows.proofBytes = proofBytes / proofTimes.count
        let start = ContinuousClock.now
        let bundle = try await store.evidence(for: big, in: signed)
        rows.ticketBundleSeconds = (ContinuousClock.now - start).seconds
        rows.ticketEvents = bundle.entries.count
        rows.ticketBundleBytes = bundle.files(verifierKey: signer.verifier.text).reduce(0) { $0 + $1.bytes.count }
        let verifyStart = ContinuousClock.now
        let comparison = try await store.verify(against: signed.checkpoint, verifier: signer.verifier)
        guard comparison.holds else { throw ToolError("the log does not match its own checkpoint: \(comparison)") }
        rows.verifyAgainstCheckpoint = Rate(
            events: Int(signed.checkpoint.size), seconds: (ContinuousClock.now - verifyStart).seconds)
        return rows
    }
}

/// Issue 17 on the bench's corpus: erasing the person who wrote the most messages.
enum ErasureMeasurements {
    struct Rows {
        var subject = ""
        var messages = 0
        var keys = 0
        var seconds = 0.0
    }

    static func erase(path: String, masterKey: MasterKey) async throws -> Rows {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.masterKey = masterKey
        let store = try EventStore(path: path, configuration: configuration)
        let top = try await store.auditTrail(AuditQuery(types: [.messagePosted], limit: 1_000_000))
            .reduce(into: [String: Int]()) { $0[$1.event.actor.id, default: 0] += 1 }
            .max { $0.value < $1.value }
        guard let (subject, messages) = top else { throw ToolError("no messages to erase") }
        let start = ContinuousClock.now
        let report = try await store.erase(
            .subject(subject), requestedBy: subject, reason: "bench", by: Actor(id: "bench", role: .admin))
        return Rows(
            subject: subject, messages: messages, keys: report.keys.count,
            seconds: (ContinuousClock.now - start).seconds)
    }
}

/// Issue 18's search row: queries on the appended log, p50 and p99. The queries come from the
/// log's own messages (every 97th), so each has hits: one word of the message, half of them with
/// a second word of it, every fourth as a prefix; 20 hits per query (newest first).
enum SearchMeasurements {
    struct Rows {
        var queries = 0
        var p50Milliseconds = 0.0
        var p99Milliseconds = 0.0
        var meanHits = 0.0
    }

    static func measure(path: String, queries: Int = 400) async throws -> Rows {
        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        let store = try EventStore(path: path, configuration: configuration)
        let messages = try await store.auditTrail(AuditQuery(types: [.messagePosted], limit: queries * 97))
        var texts: [String] = []
        for (index, entry) in messages.enumerated() where index % 97 == 0 {
            if case .messagePosted(let posted) = entry.event.payload { texts.append(posted.text) }
        }
        var generator = SplitMix(seed: 18)
        var durations: [Double] = []
        var hits = 0
        for (index, text) in texts.enumerated() {
            let words = text.split { !$0.isLetter }.filter { $0.count >= 4 }
            guard !words.isEmpty else { continue }
            var query = String(words[Int(generator.next() % UInt64(words.count))])
            if index % 4 == 0 { query = String(query.prefix(4)) + "*" }
            if index % 2 == 0 { query += " " + words[Int(generator.next() % UInt64(words.count))] }
            let start = ContinuousClock.now
            hits += try await store.search(MessageSearch(query, limit: 20)).count
            durations.append((ContinuousClock.now - start).seconds * 1_000)
        }
        guard !durations.isEmpty else { throw ToolError("no messages to search") }
        durations.sort()
        return Rows(
            queries: durations.count, p50Milliseconds: durations[durations.count / 2],
            p99Milliseconds: durations[min(durations.count - 1, durations.count * 99 / 100)],
            meanHits: Double(hits) / Double(durations.count))
    }
}
