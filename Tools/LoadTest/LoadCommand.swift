import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Ticketlog
import ToolSupport

/// `ticketlog-load`: mixed load on a real `ticketlog serve` — writers, readers, event-feed
/// subscribers — then checks that nothing went wrong and nothing was lost.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticketlog-load",
        abstract:
            "Mixed load on `ticketlog serve`; afterwards every request succeeded, every event reached every subscriber, the log verifies.",
        discussion: """
            Opens --tickets tickets in a new log at --database, starts --server (a `ticketlog` \
            executable) as `serve` on a free loopback port (FULL durability, no rate limit), and \
            for --duration seconds runs --writers tasks posting messages, --readers tasks reading \
            message pages, audit trails and point-in-time states, and --subscribers clients on \
            the live event feed (`GET /api/events`). Every --sample-interval seconds: the \
            server's resident memory, and from its `/metrics` its heap in use and what SQLite \
            holds of it.

            Afterwards: no request failed; the log holds exactly the messages acknowledged; every \
            subscriber received every event, in order; the server stopped cleanly; `verify` holds; \
            in runs of 2 minutes or more, the server's resident memory and heap in use stopped \
            growing (last fifth against second fifth). \
            Prints requests/s and latency per kind and the memory curve. Exit status 1 when a \
            check failed, with what failed.
            """
    )

    @Option(help: "The `ticketlog` executable to run as the server.")
    var server: String

    @Option(help: "The log to create (removed first).")
    var database: String

    @Option(help: "Seconds of load.")
    var duration = 60

    @Option(help: "Tasks posting messages.")
    var writers = 8

    @Option(help: "Tasks reading pages, audit trails and states.")
    var readers = 4

    @Option(help: "Clients on the live event feed.")
    var subscribers = 4

    @Option(help: "Tickets the writers spread over.")
    var tickets = 50

    @Option(help: "Seconds between memory samples.")
    var sampleInterval = 5

    @Option(
        help:
            "The server's writer page cache in MiB (`serve --cache-mib`): memory grows up to it as the log grows, so a small one shows a leak sooner."
    )
    var cacheMib = 64

    @Option(help: "The page cache of each of the server's reading connections in MiB (`serve --reader-cache-mib`).")
    var readerCacheMib = 2

    func validate() throws {
        guard duration > 0, writers > 0, readers >= 0, subscribers >= 0, tickets > 0, sampleInterval > 0 else {
            throw ValidationError(
                "--duration, --writers, --tickets and --sample-interval must be positive; --readers and --subscribers 0 or more"
            )
        }
    }

    static let secret = "ticketlog-load-secret-of-at-least-32-bytes"

    func run() async throws {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        let directory = (database as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let streams = (1...tickets).map { StreamID.ticket("load-\($0)")! }
        do {
            let store = try EventStore(path: database)
            let admin = Actor(id: "load", role: .admin)
            for stream in streams {
                try await store.execute(
                    .open(title: "Load \(stream)", brand: "acme", creator: "kim"), on: stream, by: admin)
            }
        }
        let token = try LocalServer.run(
            server, ["token", "--subject", "load", "--role", "admin"],
            environment: ["TICKETLOG_AUTH_SECRET": Self.secret]
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try LocalServer.freePort()
        let log = database + ".server.log"
        let serve = try await LocalServer.startServe(
            executable: server, database: database, port: port, secret: Self.secret, log: log,
            extra: ["--cache-mib", String(cacheMib), "--reader-cache-mib", String(readerCacheMib)])
        defer { if serve.isRunning { serve.terminate() } }
        say(
            "load: \(writers) writers, \(readers) readers, \(subscribers) subscribers on port \(port) for \(duration) s"
        )

        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let load = Load(client: client, base: "http://127.0.0.1:\(port)", token: token, streams: streams)
        let report: LoadReport
        do {
            report = try await load.run(
                duration: .seconds(duration), writers: writers, readers: readers, subscribers: subscribers,
                sampleEvery: .seconds(sampleInterval), serverPID: serve.processIdentifier)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()

        serve.terminate()
        serve.waitUntilExit()
        var failures = report.failures
        if serve.terminationStatus != 0 {
            failures.append("the server exited with status \(serve.terminationStatus) on SIGTERM (see \(log))")
        }

        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        let store = try EventStore(path: database, configuration: configuration)
        let verification = try await store.verify()
        if let failure = verification.failure { failures.append("verify failed: \(failure)") }
        let messages = verification.eventsVerified - Int64(tickets)
        if messages != Int64(report.acknowledgedWrites) {
            failures.append(
                "the log holds \(messages) messages but \(report.acknowledgedWrites) posts were acknowledged")
        }
        for (what, memory) in [("resident memory", report.residentIsFlat), ("heap in use", report.heapIsFlat)]
        where duration >= 120 && !memory.flat {
            failures.append(
                "the server's \(what) kept growing: median \(memory.early / 1_048_576) MiB early, \(memory.late / 1_048_576) MiB at the end"
            )
        }
        for (index, received) in report.delivered.enumerated() where received != verification.headPosition {
            failures.append(
                "subscriber \(index + 1) received events up to \(received), the log's head is \(verification.headPosition)"
            )
        }

        say(report.summary(seconds: duration))
        say(
            "log: \(verification.eventsVerified) events, verify \(verification.isValid ? "OK" : "FAILED"); every subscriber got all \(verification.headPosition): \(report.delivered.allSatisfy { $0 == verification.headPosition })"
        )
        if failures.isEmpty {
            say("OK: no failed request, nothing lost")
        } else {
            for failure in failures.prefix(20) { say("FAILED: \(failure)") }
            throw ExitCode(1)
        }
    }
}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
