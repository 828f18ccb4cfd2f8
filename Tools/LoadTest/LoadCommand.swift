import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Ticketlog
import TicketlogPostgres
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

            Several nodes (issue 19): with a PostgreSQL --database (an empty database) and \
            --nodes N, N servers share the log; writers, readers and subscribers are spread over \
            them as a load balancer would. --kill-node-after kills the last node with SIGKILL \
            mid-run: its clients go on with the others (a subscriber resumes after the last \
            position it got), and requests it had in flight are sent again. --restart-command \
            (run once, --restart-after seconds in) restarts the database: requests answered 503 \
            are sent again after their Retry-After. Posts carry their own message ids, so a post \
            sent again after an answer that never came is recognised (409) instead of stored twice.
            """
    )

    @Option(help: "The `ticketlog` executable to run as the server.")
    var server: String

    @Option(help: "The log: a file to create (removed first), or the URL of an empty PostgreSQL database.")
    var database: String

    @Option(help: "Servers sharing the log (more than one needs a PostgreSQL --database).")
    var nodes = 1

    @Option(help: "Seconds into the load at which the last node is killed with SIGKILL (0: never).")
    var killNodeAfter = 0

    @Option(help: "A shell command that restarts the database, run once during the load.")
    var restartCommand: String?

    @Option(help: "Seconds into the load at which --restart-command runs.")
    var restartAfter = 0

    @Option(help: "Where the servers' logs go (default: beside a file log, else the temporary directory).")
    var logs: String?

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
        guard nodes >= 1, nodes == 1 || isShared else {
            throw ValidationError("--nodes must be 1 or more; more than 1 needs a postgres:// --database")
        }
        guard killNodeAfter >= 0, killNodeAfter == 0 || (nodes >= 2 && killNodeAfter < duration) else {
            throw ValidationError("--kill-node-after needs --nodes 2 or more and must fall within --duration")
        }
        guard restartAfter >= 0, restartCommand == nil || restartAfter < duration else {
            throw ValidationError("--restart-after must fall within --duration")
        }
    }

    /// Whether the log is in PostgreSQL.
    var isShared: Bool { PostgresLocation.isURL(database) }

    static let secret = "ticketlog-load-secret-of-at-least-32-bytes"

    func run() async throws {
        let streams = (1...tickets).map { StreamID.ticket("load-\($0)")! }
        let logDirectory: String
        if isShared {
            logDirectory = logs ?? FileManager.default.temporaryDirectory.path
        } else {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
            let directory = (database as NSString).deletingLastPathComponent
            logDirectory = logs ?? (directory.isEmpty ? "." : directory)
        }
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        do {
            let store = try await EventStore.open(database: database)
            guard try await store.headPosition() == 0 else {
                await store.close()
                throw ValidationError(
                    "\(PostgresLocation.redacted(database)) holds a log already: give an empty database")
            }
            let admin = Actor(id: "load", role: .admin)
            for stream in streams {
                try await store.execute(
                    .open(title: "Load \(stream)", brand: "acme", creator: "kim"), on: stream, by: admin)
            }
            await store.close()
        }
        let token = try LocalServer.run(
            server, ["token", "--subject", "load", "--role", "admin"],
            environment: ["TICKETLOG_AUTH_SECRET": Self.secret]
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        var servers: [(process: Process, port: Int, log: String)] = []
        defer { for server in servers where server.process.isRunning { server.process.terminate() } }
        for node in 0..<nodes {
            let port = try LocalServer.freePort()
            let log = logDirectory + "/" + (isShared ? "load-node-\(node + 1).log" : "load.sqlite.server.log")
            let serve = try await LocalServer.startServe(
                executable: server, database: database, port: port, secret: Self.secret, log: log,
                extra: ["--cache-mib", String(cacheMib), "--reader-cache-mib", String(readerCacheMib)])
            servers.append((serve, port, log))
        }
        say(
            "load: \(writers) writers, \(readers) readers, \(subscribers) subscribers on \(nodes == 1 ? "port \(servers[0].port)" : "\(nodes) nodes (ports \(servers.map { String($0.port) }.joined(separator: ", ")))") for \(duration) s"
        )

        var disruptions: [Load.Disruption] = []
        if killNodeAfter > 0 {
            let victim = servers[nodes - 1].process
            disruptions.append(
                Load.Disruption(after: .seconds(killNodeAfter), node: nodes - 1, name: "node \(nodes) killed (SIGKILL)")
                {
                    kill(victim.processIdentifier, SIGKILL)
                })
        }
        if let restartCommand {
            disruptions.append(
                Load.Disruption(after: .seconds(restartAfter), node: nil, name: "database restarted") {
                    _ = try? LocalServer.run("/bin/sh", ["-c", restartCommand])
                })
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let load = Load(
            client: client, bases: servers.map { "http://127.0.0.1:\($0.port)" }, token: token, streams: streams)
        let report: LoadReport
        do {
            report = try await load.run(
                duration: .seconds(duration), writers: writers, readers: readers, subscribers: subscribers,
                sampleEvery: .seconds(sampleInterval), serverPID: servers[0].process.processIdentifier,
                disruptions: disruptions)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()

        var failures = report.failures
        for (node, server) in servers.enumerated() where !(killNodeAfter > 0 && node == nodes - 1) {
            server.process.terminate()
            server.process.waitUntilExit()
            if server.process.terminationStatus != 0 {
                failures.append(
                    "node \(node + 1) exited with status \(server.process.terminationStatus) on SIGTERM (see \(server.log))"
                )
            }
        }

        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        configuration.createIfMissing = false
        let store = try await EventStore.open(database: database, configuration: configuration)
        let verification = try await store.verify()
        await store.close()
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
