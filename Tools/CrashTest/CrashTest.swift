import ArgumentParser
import Foundation
import Synthetic
import Ticketlog
import ToolSupport

#if canImport(Glibc)
    import Glibc
#endif

@main
struct CrashTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticketlog-crashtest",
        abstract:
            "Kill a writer with SIGKILL at random moments; after each restart check that nothing acknowledged was lost.",
        discussion: """
            `run` starts a writer process (four tasks appending the seeded synthetic desk at FULL \
            durability, printing each acknowledged append), kills it with SIGKILL a random time \
            after it opened the log, and after each kill opens the log again and checks: `verify` \
            passes; every acknowledged event is in the log exactly once, at the position it was \
            acknowledged with; the projections equal a rebuild from the events. The next writer \
            resumes after the last acknowledged append of each task, so an append that was in \
            flight at the kill is sent again and must come back as already stored, with the same \
            positions. The acknowledgements are kept in DATABASE.acks; `check` checks a log \
            against them again.

            Exit status: 0 when every check held after every kill, 1 when one failed (what and \
            where is printed).
            """,
        subcommands: [Run.self, Check.self, Writer.self],
        defaultSubcommand: Run.self
    )
}

/// Everything acknowledged so far: append number → the positions it was acknowledged with.
struct Acknowledgements {
    var positions: [Int: ClosedRange<Int64>] = [:]
    /// Per worker, the highest append number acknowledged (-1: none).
    var lastPerWorker = [Int](repeating: -1, count: Workload.workers)
    /// Appends acknowledged as already stored: retries of an append in flight at a kill.
    var retriesFoundStored = 0

    /// Records one `ack` line; a second acknowledgement of an append must name the same positions.
    mutating func record(_ line: Substring, workerOf: (Int) -> Int) throws {
        let fields = line.split(separator: " ")
        guard fields.count == 5, fields[0] == "ack", let number = Int(fields[1]), let first = Int64(fields[2]),
            let last = Int64(fields[3]), first <= last
        else { throw CrashTestFailure("the writer printed a line that is not an acknowledgement: \(line)") }
        if let earlier = positions[number], earlier != first...last {
            throw CrashTestFailure(
                "append \(number) was acknowledged at positions \(earlier) and again at \(first)...\(last): it was stored twice"
            )
        }
        if fields[4] == "1" { retriesFoundStored += 1 }
        positions[number] = first...last
        let worker = workerOf(number)
        lastPerWorker[worker] = max(lastPerWorker[worker], number)
    }

    func save(to path: String) throws {
        let lines = positions.sorted { $0.key < $1.key }.map {
            "\($0.key) \($0.value.lowerBound) \($0.value.upperBound)\n"
        }
        try lines.joined().write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func load(from path: String) throws -> Acknowledgements {
        var acks = Acknowledgements()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ").compactMap { Int64($0) }
            guard fields.count == 3 else { throw CrashTestFailure("\(path): not an acknowledgement line: \(line)") }
            acks.positions[Int(fields[0])] = fields[1]...fields[2]
        }
        return acks
    }
}

struct CrashTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A line on stdout at once (a single `write`, so lines of concurrent tasks never interleave).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

extension CrashTest {
    /// The process that is killed: appends the workload at FULL durability, one line per
    /// acknowledged append.
    struct Writer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "writer", abstract: "The writer `run` starts and kills.", shouldDisplay: false)

        @Option(help: "The log.")
        var database: String

        @Option(help: "The workload's seed.")
        var seed: UInt64 = 1

        @Option(help: "Per worker, the last append already acknowledged (comma-separated, -1 for none).")
        var after: String = ""

        func run() async throws {
            let after =
                self.after.isEmpty
                ? [Int](repeating: -1, count: Workload.workers)
                : self.after.split(separator: ",").compactMap { Int($0) }
            guard after.count == Workload.workers else {
                throw ValidationError("--after needs \(Workload.workers) numbers")
            }
            var configuration = EventStore.Configuration()
            configuration.durability = .full
            let store = try EventStore(path: database, configuration: configuration)
            emit("ready")
            let workload = Workload(seed: seed)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<Workload.workers {
                    group.addTask {
                        for batch in workload.batches() where batch.worker == worker && batch.number > after[worker] {
                            let result = try await store.append(batch.events, to: batch.stream)
                            emit(
                                "ack \(batch.number) \(result.positions.lowerBound) \(result.positions.upperBound) \(result.wasAlreadyStored ? 1 : 0)"
                            )
                        }
                    }
                }
                try await group.waitForAll()
            }
            emit("done")
        }
    }

    /// Checks a log against the acknowledgements of an earlier `run`.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a log against the acknowledgements `run` kept (DATABASE.acks).")

        @Option(help: "The log.")
        var database: String

        @Option(help: "The workload's seed (as given to `run`).")
        var seed: UInt64 = 1

        func run() async throws {
            let acks = try Acknowledgements.load(from: database + ".acks")
            do {
                let summary = try await Checker(database: database, seed: seed).check(acks)
                emit("OK: \(summary)")
            } catch let failure as CrashTestFailure {
                emit("FAILED: \(failure)")
                throw ExitCode(1)
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Kill the writer --kills times; check the log after each restart.")

        @Option(help: "The log (removed first, with its .acks file).")
        var database: String

        @Option(help: "How many times to kill the writer.")
        var kills = 5

        @Option(help: "The workload's seed; also picks the moments of the kills.")
        var seed: UInt64 = 1

        @Option(help: "The longest time, in milliseconds, between the writer opening the log and the kill.")
        var maxDelay = 400

        func validate() throws {
            if kills < 1 { throw ValidationError("--kills must be at least 1") }
            if maxDelay < 0 { throw ValidationError("--max-delay must be 0 or more") }
        }

        func run() async throws {
            for suffix in ["", "-wal", "-shm", ".acks"] {
                try? FileManager.default.removeItem(atPath: database + suffix)
            }
            try FileManager.default.createDirectory(
                atPath: (database as NSString).deletingLastPathComponent.isEmpty
                    ? "." : (database as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true)
            var acks = Acknowledgements()
            var workers: [Int: Int] = [:]  // append number → worker, filled as acknowledgements arrive
            let workload = Workload(seed: seed)
            var batches = workload.batches().makeIterator()
            func workerOf(_ number: Int) -> Int {
                while workers[number] == nil, let batch = batches.next() { workers[batch.number] = batch.worker }
                return workers[number] ?? 0
            }
            var random = SplitMix(seed: seed &* 7919)
            let checker = Checker(database: database, seed: seed)
            let started = ContinuousClock.now
            for kill in 1...kills {
                let delay = random.next(below: maxDelay + 1)
                let round = try WriterProcess.runAndKill(
                    database: database, seed: seed, after: acks.lastPerWorker, afterReadyMilliseconds: delay)
                for line in round.lines where line.hasPrefix("ack ") {
                    do { try acks.record(line, workerOf: workerOf) } catch let failure as CrashTestFailure {
                        emit("FAILED after kill \(kill): \(failure)")
                        throw ExitCode(1)
                    }
                }
                try acks.save(to: database + ".acks")
                let summary: String
                do {
                    summary = try await checker.check(acks)
                } catch let failure as CrashTestFailure {
                    emit("FAILED after kill \(kill): \(failure)")
                    throw ExitCode(1)
                }
                let acknowledged = round.lines.count { $0.hasPrefix("ack ") }
                emit(
                    "kill \(kill)/\(kills): SIGKILL \(delay) ms after open, \(acknowledged) appends acknowledged in this run; restart: \(summary)"
                )
                if round.finished {
                    emit("the writer finished the whole workload before the kill; stopping")
                    break
                }
            }
            emit(
                "survived \(kills) kills in \(String(format: "%.1f", (ContinuousClock.now - started).seconds)) s: \(acks.positions.count) acknowledged appends all present exactly once; "
                    + "\(acks.retriesFoundStored) appends in flight at a kill were sent again and found stored; "
                    + "verify and the projection check held after every restart")
        }
    }
}

/// Starting the writer, killing it, and what it printed.
enum WriterProcess {
    struct Round {
        var lines: [Substring]
        /// The writer printed `done`: it had appended the whole workload.
        var finished: Bool
    }

    static func runAndKill(database: String, seed: UInt64, after: [Int], afterReadyMilliseconds delay: Int) throws
        -> Round
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = [
            "writer", "--database", database, "--seed", String(seed),
            "--after=" + after.map(String.init).joined(separator: ","),
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Read everything the writer prints on a thread of its own; the last line may be cut
        // short by the kill and is then ignored.
        let collected = Collected()
        let reader = Thread {
            let handle = output.fileHandleForReading
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                collected.append(data)
            }
            collected.close()
        }
        reader.start()
        let deadline = Date().addingTimeInterval(60)
        while !collected.text.contains("ready\n") {
            guard process.isRunning, Date() < deadline else {
                throw CrashTestFailure(
                    "the writer did not open the log (exit status \(process.isRunning ? "none, still running" : String(process.terminationStatus)))"
                )
            }
            usleep(2_000)
        }
        usleep(useconds_t(delay * 1_000))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        collected.waitUntilClosed()
        let text = collected.text
        let complete =
            text.hasSuffix("\n")
            ? text[...] : text[..<(text.lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex)]
        let lines = complete.split(separator: "\n")
        return Round(lines: lines, finished: lines.last == "done")
    }

    /// The writer's output so far, filled by the reader thread.
    final class Collected: @unchecked Sendable {
        // @unchecked Sendable: every access to `data` and `closed` holds `condition`.
        private let condition = NSCondition()
        private var data = Data()
        private var closed = false

        func append(_ more: Data) {
            condition.lock()
            data.append(more)
            condition.unlock()
        }

        func close() {
            condition.lock()
            closed = true
            condition.broadcast()
            condition.unlock()
        }

        func waitUntilClosed() {
            condition.lock()
            while !closed { condition.wait() }
            condition.unlock()
        }

        var text: String {
            condition.lock()
            defer { condition.unlock() }
            return String(decoding: data, as: UTF8.self)
        }
    }
}
