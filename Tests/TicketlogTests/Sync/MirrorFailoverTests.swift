import Foundation
import Hummingbird
import HummingbirdTesting
import StreamChatEmulator
import Synthetic
import Testing
import ToolSupport

@testable import StreamChatSync
@testable import Ticketlog
@testable import TicketlogPostgres

/// The Stream mirror on several nodes (issue 19): two `ticketlog serve` processes share a log in
/// PostgreSQL and mirror it to the emulator, which injects faults (5xx, 429 bursts, responses
/// lost after the change). One mirrors at a time; the one mirroring is killed with SIGKILL
/// midway; the other takes over from the durable cursor; then PostgreSQL restarts and the mirror
/// goes on with what is appended after; Stream ends equal to the log, each message once.
@Suite(.timeLimit(.minutes(6)), .disabled(if: PostgresTestServer.skipped, PostgresTestServer.skipReason))
struct MirrorFailoverTests {
    static let secret = "mirror-failover-secret-of-32-bytes-or-more"

    @Test func anotherNodeTakesOverTheMirrorWhenItsNodeIsKilled() async throws {
        let cluster = try await PrivateCluster.start()
        defer { Task { await cluster.remove() } }
        try await PostgresTestServer.execute("CREATE DATABASE failover", on: cluster.location)
        let location = {
            var location = cluster.location
            location.database = "failover"
            return location
        }()
        let store = try await EventStore.open(location)
        let desk = Array(SyntheticDesk(.init(tickets: 8, seed: 19, meanMessagesPerTicket: 12)).events())
        try await SyntheticDesk.append(desk, to: store)
        let head = try await store.headPosition()

        var emulator = StreamEmulator(apiKey: "failover-key", apiSecret: Self.secret)
        emulator.inject(.init(percent: 15, latency: 0.002...0.01, seed: 23))
        let stream = EmulatorServer(emulator)
        let directory = try TemporaryDirectory()
        try await Application(router: stream.router()).test(.live) { streamClient in
            let streamURL = "http://127.0.0.1:\(try #require(streamClient.port))"
            func node(_ name: String) async throws -> Process {
                let port = try LocalServer.freePort()
                let log = directory.path("\(name).log")
                _ = FileManager.default.createFile(atPath: log, contents: nil)
                let serve = Process()
                serve.executableURL = CLITests.executable
                serve.arguments = [
                    "serve", "--database", location.description, "--port", String(port), "--log-level", "info",
                ]
                var environment = ProcessInfo.processInfo.environment
                environment["PGPASSWORD"] = location.password
                environment["TICKETLOG_AUTH_SECRET"] = ServerFixture.secret
                environment["STREAM_API_KEY"] = "failover-key"
                environment["STREAM_API_SECRET"] = Self.secret
                environment["STREAM_BASE_URL"] = streamURL
                serve.environment = environment
                serve.standardOutput = FileHandle(forWritingAtPath: log)
                serve.standardError = serve.standardOutput
                try serve.run()
                try await LocalServer.waitForListener(port: port, process: serve, log: log)
                return serve
            }
            func mirrored() -> Int {
                stream.state.withLock { $0.messages.keys.filter { !$0.hasPrefix("tl-") }.count }
            }
            let first = try await node("first")
            defer { if first.isRunning { first.terminate() } }
            // The first node holds the lock alone for a moment: it is the one mirroring.
            for _ in 0..<400 where mirrored() < 5 { try await Task.sleep(for: .milliseconds(25)) }
            #expect(mirrored() >= 5, "the first node mirrors")
            let second = try await node("second")
            defer { if second.isRunning { second.terminate() } }
            let total = try await store.tickets().map(\.messages).reduce(0, +)
            for _ in 0..<400 where mirrored() < total / 3 { try await Task.sleep(for: .milliseconds(10)) }
            let atKill = try await store.syncCursor(StreamChatDestination.mirror)
            let waiting = try String(contentsOfFile: directory.path("second.log"), encoding: .utf8)
            #expect(!waiting.contains("This process took the lock"), "one node mirrors at a time")
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()
            #expect(atKill < head, "killed midway (cursor \(atKill) of \(head))")

            for _ in 0..<1_200 where try await store.syncCursor(StreamChatDestination.mirror) < head {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await store.syncCursor(StreamChatDestination.mirror) == head, "the second node caught up")
            let secondLog = try String(contentsOfFile: directory.path("second.log"), encoding: .utf8)
            #expect(secondLog.contains("This process took the lock"), "\(secondLog.suffix(2_000))")

            // PostgreSQL restarts under the mirroring node: it goes on with what comes after.
            try await cluster("restart")
            let admin = Actor(id: "ada", role: .admin)
            try await store.execute(
                .open(title: "After the restart", brand: "acme", creator: "kim"), on: .ticket("late")!, by: admin)
            for index in 0..<5 {
                try await store.execute(
                    .postMessage(messageID: "late-\(index)", text: "after the restart \(index)", attachments: []),
                    on: .ticket("late")!, by: admin)
            }
            let later = try await store.headPosition()
            for _ in 0..<1_200 where try await store.syncCursor(StreamChatDestination.mirror) < later {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await store.syncCursor(StreamChatDestination.mirror) == later, "mirrored after the restart")
            #expect(second.isRunning, "the node outlived the restart")
            second.terminate()
            second.waitUntilExit()
        }
        let final = stream.state.withLock { $0 }
        try await InboundEndToEndTests.expectLogEqualsStream(store, final)
        #expect(try await store.deadLetters(StreamChatDestination.mirror).isEmpty)
        for ticket in try await store.tickets() {
            let inStream = (final.channelMessages[ticket.stream.rawValue] ?? []).filter { !$0.hasPrefix("tl-") }
            #expect(Set(inStream).count == inStream.count, "each message once in \(ticket.stream)")
            let logged = try await store.messages(of: ticket.stream, limit: 100_000)
            #expect(inStream.count == logged.count, "\(ticket.stream)")
        }
        await store.close()
    }
}
