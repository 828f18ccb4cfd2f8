// A first measurement of the core log: batched appends, concurrent single appends (group
// commit), scan, verify and bytes per event, on a synthetic corpus. `make bench-log` runs it.
// The full harness with baselines (issue 6) builds on this.
import Foundation
import Synthetic
import Ticketlog

@main
struct LogBench {
    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        let events = arguments.first.flatMap(Int.init) ?? 100_000
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ticketlog-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let tickets = max(1, events / 100)
        let corpus = Array(SyntheticDesk(.init(tickets: tickets, seed: 42, meanMessagesPerTicket: 86)).events().prefix(events))
            .map { ($0.stream, $0.event) }
        let rawJSON = try corpus.reduce(0) { $0 + (try EventLine(stream: $1.0, event: $1.1).json().count) }
        print("corpus: \(corpus.count) events over \(tickets) tickets, mean event JSON \(rawJSON / corpus.count) B")

        // 1. Batched append: 1000 events at a time, NORMAL. The 1000 span many streams; their
        //    per-stream appends are submitted together, and group commit writes each batch in
        //    one transaction.
        var normal = EventStore.Configuration()
        normal.durability = .normal
        let batchedPath = directory.appendingPathComponent("batched.sqlite").path
        let store = try EventStore(path: batchedPath, configuration: normal)
        let batchedStart = ContinuousClock.now
        var index = 0
        while index < corpus.count {
            let slice = corpus[index..<min(index + 1000, corpus.count)]
            for result in await store.append(StreamAppend.runs(slice)) { _ = try result.get() }
            index += 1000
        }
        let batched = ContinuousClock.now - batchedStart
        report("batched append (1000/batch, NORMAL)", corpus.count, batched)

        let scanStart = ContinuousClock.now
        var position: Int64 = 1
        var scanned = 0
        while true {
            let page = try await store.readAll(from: position, limit: 5_000)
            guard let last = page.last else { break }
            scanned += page.count
            position = last.position + 1
        }
        report("read all (decompress + decode)", scanned, ContinuousClock.now - scanStart)

        let verifyStart = ContinuousClock.now
        let verification = try await store.verify()
        report("verify (chain + decode)", Int(verification.eventsVerified), ContinuousClock.now - verifyStart)

        let size = try FileManager.default.attributesOfItem(atPath: batchedPath)[.size] as? Int ?? 0
        let wal = (try? FileManager.default.attributesOfItem(atPath: batchedPath + "-wal")[.size] as? Int) ?? 0
        print("file: \((size + wal) / corpus.count) B/event (db \(size) B + wal \(wal) B); dictionaries: \(try await store.dictionaryUsage())")

        // 2. 16 concurrent appenders, one event per append, FULL: group commit at work.
        var full = EventStore.Configuration()
        full.durability = .full
        let concurrent = try EventStore(path: directory.appendingPathComponent("concurrent.sqlite").path, configuration: full)
        let singles = min(corpus.count, 20_000)
        let concurrentStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var item = worker
                    while item < singles {
                        try await concurrent.append(corpus[item].1, to: corpus[item].0)
                        item += 16
                    }
                }
            }
            try await group.waitForAll()
        }
        report("16 concurrent single appends (FULL)", singles, ContinuousClock.now - concurrentStart)
    }

    static func report(_ label: String, _ count: Int, _ duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let rate = Double(count) / seconds
        print("\(label.padding(toLength: 42, withPad: " ", startingAt: 0)) \(String(format: "%10.0f", rate)) events/s  (\(count) in \(String(format: "%.2f", seconds)) s)")
    }
}
