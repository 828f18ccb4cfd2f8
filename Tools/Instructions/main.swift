import Dispatch
import Foundation
import Synthetic
import Ticketlog

// One unit of work for `ticketlog-bench --valgrind` to count instructions of under callgrind:
//
//     ticketlog-instructions KIND DATABASE EVENTS
//
// KIND is `corpus` (generate the bench corpus only), `append` (generate and append it, 1000
// events per append, projections inline), `append-encrypted` (the same with a master key: issue
// 17's sealing), `append-events-only` (projections not kept inline: the events' own rows, for
// profiling), `open` (open the log only), `rebuild` (rebuild every
// projection) or `export` (NDJSON export). The bench subtracts `corpus` from `append` and `open`
// from `rebuild` and `export`.
//
// The main thread waits on a semaphore instead of running Swift's async main: valgrind 3.19
// (Debian 12) crashes on a process whose main thread is parked by the async main (sigsuspend
// while threads start), which is why this is not a child mode of the bench itself.

let arguments = CommandLine.arguments
guard arguments.count == 4, let events = Int(arguments[3]), events > 0 else {
    FileHandle.standardError.write(
        Data(
            "usage: ticketlog-instructions corpus|append|append-encrypted|append-events-only|open|rebuild|export DATABASE EVENTS\n"
                .utf8))
    exit(2)
}
let kind = arguments[1]
let database = arguments[2]

struct Failure: Error, CustomStringConvertible {
    var description: String
}

func corpus() -> some Sequence<(stream: StreamID, event: ProposedEvent)> {
    SyntheticDesk(.init(tickets: max(1, events / 100), seed: 42, meanMessagesPerTicket: 86)).events().prefix(events)
        .lazy.map { ($0.stream, $0.event) }
}

func run() async throws {
    switch kind {
    case "corpus":
        var count = 0
        for _ in corpus() { count += 1 }
        guard count == events else { throw Failure(description: "the corpus has \(count) events, not \(events)") }
    case "append", "append-encrypted", "append-events-only":
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        if kind == "append-encrypted" { configuration.masterKey = MasterKey.generate() }
        configuration.inlineProjections = kind != "append-events-only"
        let store = try EventStore(path: database, configuration: configuration)
        var batch: [(StreamID, ProposedEvent)] = []
        for item in corpus() {
            batch.append(item)
            if batch.count == 1_000 {
                for result in await store.append(StreamAppend.runs(batch[...])) { _ = try result.get() }
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty {
            for result in await store.append(StreamAppend.runs(batch[...])) { _ = try result.get() }
        }
    case "open":
        _ = try EventStore(path: database)
    case "rebuild":
        try await EventStore(path: database).rebuildProjections()
    case "export":
        let target = database + ".export"
        _ = try await EventStore(path: database).export(to: target, ExportOptions(format: .ndjson, overwrite: true))
    default:
        throw Failure(description: "unknown kind \(kind.debugDescription)")
    }
}

let done = DispatchSemaphore(value: 0)
nonisolated(unsafe) var failure: (any Error)?
Task.detached {
    do { try await run() } catch { failure = error }
    done.signal()
}
done.wait()
if let failure {
    FileHandle.standardError.write(Data("ticketlog-instructions \(kind): \(failure)\n".utf8))
    exit(1)
}
