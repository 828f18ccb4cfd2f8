import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import StreamChatEmulator
import Synthetic
import Testing
import ToolSupport

@testable import StreamChatSync
@testable import Ticketlog
@testable import TicketlogServer
@testable import TicketlogStreamChat

/// The live AsyncHTTPClient client against the emulator on a real loopback port.
/// (Six minutes: mirroring through the emulator takes seconds alone and over two minutes
/// beside the whole suite on two cores.)
@Suite(.timeLimit(.minutes(6))) struct LiveClientTests {
    @Test func aDeskMirroredOverHTTPEqualsTheProjections() async throws {
        let store = try EventStore.inMemory()
        let desk = Array(SyntheticDesk(.init(tickets: 5, seed: 8, meanMessagesPerTicket: 10)).events())
        try await SyntheticDesk.append(desk, to: store)
        let server = EmulatorServer(StreamEmulator(apiKey: "live-key", apiSecret: "live-secret"))
        let app = Application(router: server.router())
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let live = StreamChatClient.live(
                baseURL: "http://127.0.0.1:\(port)", auth: StreamChatAuth(apiKey: "live-key", apiSecret: "live-secret"))
            let cursor = try await OutboxDriver(store: store, client: live).runUntilCaughtUp()
            #expect(cursor == (try await store.headPosition()))
            #expect(try await store.deadLetters(StreamChatDestination.mirror).isEmpty)

            // Wrong credentials are refused as Stream would, and dead-lettered, not retried forever.
            let wrong = StreamChatClient.live(
                baseURL: "http://127.0.0.1:\(port)", auth: StreamChatAuth(apiKey: "live-key", apiSecret: "wrong"))
            let response = try await wrong.send(StreamChatRequest(.get, "/messages/nope"))
            #expect(response.status == 401)
            #expect(response.headers["x-ratelimit-limit"] != nil)
        }
        let emulator = server.state.withLock { $0 }
        for ticket in try await store.tickets() {
            let sent = (emulator.channelMessages[ticket.stream.rawValue] ?? []).compactMap { emulator.messages[$0] }
                .filter { $0.type != "system" }
            let projected = try await store.messages(of: ticket.stream, limit: 10_000)
            #expect(sent.map(\.id) == projected.map { StreamChatIDs.message($0.messageID, in: ticket.stream) })
            #expect(emulator.channels[ticket.stream.rawValue]?.custom["ticket_status"] == .string(ticket.status))
        }
    }
}

/// `ticketlog sync` and `sync status` against the `stream-emulator` executable.
@Suite(.timeLimit(.minutes(10))) struct SyncCLITests {
    @Test func syncUntilCaughtUpThenStatus() async throws {
        let directory = try TemporaryDirectory()
        let log = directory.path("demo.sqlite")
        #expect(try CLITests.run("demo", "--database", log, "--durability", "normal").status == 0)
        let port = 19_000 + Int.random(in: 0..<900)
        let emulator = Process()
        emulator.executableURL = CLITests.executable.deletingLastPathComponent().appendingPathComponent(
            "stream-emulator")
        emulator.arguments = [
            "--port", "\(port)", "--api-key", "k", "--api-secret", "emulator-secret-of-32-bytes-or-more",
        ]
        emulator.standardOutput = FileHandle.nullDevice
        emulator.standardError = FileHandle.nullDevice
        try emulator.run()
        defer { emulator.terminate() }
        try await LocalServer.waitForListener(port: port, process: emulator, log: "/dev/null")
        // The secret from a file only the owner reads: secrets never go on the command line.
        let secretFile = directory.path("stream-secret")
        try "emulator-secret-of-32-bytes-or-more\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile)

        let before = try CLITests.run("sync", "status", "--database", log)
        #expect(before.stdout.hasPrefix("mirrored up to position 0 of 14 (14 behind)"))
        let sync = try CLITests.run(
            "sync", "--database", log, "--base-url", "http://127.0.0.1:\(port)", "--stream-api-key", "k",
            "--stream-api-secret-file", secretFile, "--until-caught-up")
        #expect(sync.status == 0, "\(sync.stderr)")
        #expect(sync.stdout == "mirrored up to position 14\n")
        let after = try CLITests.run("sync", "status", "--database", log)
        #expect(after.stdout.hasPrefix("mirrored up to position 14 of 14 (0 behind)\ndead letters: 0"))

        let credentials = [
            "--database", log, "--base-url", "http://127.0.0.1:\(port)", "--stream-api-key", "k",
            "--stream-api-secret-file", secretFile,
        ]
        // Backfill from what Stream holds: it is all the engine's own already.
        let backfill = try runProcess(
            CLITests.executable, ["sync", "import", "--channel", "ticket-1001"] + credentials)
        #expect(backfill.status == 0, "\(backfill.stderr)")
        #expect(
            backfill.stdout.hasPrefix("ticket-1001: 7 messages in 1 pages, 0 events appended"), "\(backfill.stdout)")
        let unknown = try runProcess(CLITests.executable, ["sync", "import", "--channel", "ticket-404"] + credentials)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("Stream has no channel messaging:ticket-404"))
        #expect(
            try runProcess(CLITests.executable, ["sync", "import", "--channel", "lobby"] + credentials).status == 64)
        let redrive = try runProcess(CLITests.executable, ["sync", "redrive", "--all"] + credentials)
        #expect(redrive.stdout == "no dead letters\n")

        let missing = try CLITests.run("sync", "--database", log, "--until-caught-up")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("STREAM_API_KEY"))
        // The old option that put the secret on the command line is gone.
        let onTheCommandLine = try CLITests.run(
            "sync", "--database", log, "--stream-api-secret", "visible-in-ps-to-every-user")
        #expect(onTheCommandLine.status == 64 && onTheCommandLine.stderr.contains("--stream-api-secret"))
    }
}

/// The mirror as a service of the server: events appended while the server runs reach Stream.
@Suite(.timeLimit(.minutes(3))) struct SyncServiceTests {
    @Test func theServerMirrorsWhileItRuns() async throws {
        let store = try EventStore.inMemory()
        let stream = OutboxDriverTests.FaultyStream(seed: 4, faultPercent: 10)
        var driverConfiguration = OutboxDriver.Configuration()
        driverConfiguration.stateMachine = .init(baseBackoff: 0.005, maximumBackoff: 0.05)
        let app = try await TicketlogServer.application(
            store: store, configuration: ServerFixture.configuration, logger: .disabled,
            extensions: [
                StreamChatServerExtension(
                    store: store, apiSecret: ServerFixture.streamSecret,
                    mirror: OutboxDriver(store: store, client: stream.client, configuration: driverConfiguration))
            ])
        try await app.test(.live) { client in
            let admin = try await ServerFixture.token("ada", .admin)
            let opened = try await client.execute(
                uri: "/api/chat/tickets", method: .post, headers: ServerFixture.headers(admin),
                body: ByteBuffer(string: #"{"ticketId":"s1","title":"Synced","brand":"acme","creator":"kim"}"#))
            #expect(opened.status == .created)
            let posted = try await client.execute(
                uri: "/api/chat/tickets/s1/messages", method: .post, headers: ServerFixture.headers(admin),
                body: ByteBuffer(string: #"{"messageId":"m-1","text":"hello Stream"}"#))
            #expect(posted.status == .created)
            // Mirrored: Stream holds the message and the driver has recorded it (its cursor is
            // written after the send, so waiting for Stream alone raced the shutdown below).
            var mirrored = false
            for _ in 0..<400 where !mirrored {
                try await Task.sleep(for: .milliseconds(25))
                let cursor = try await store.syncCursor(StreamChatDestination.mirror)
                mirrored =
                    cursor == 2
                    && stream.emulator.withLock { $0.messages["ticket-s1--m-1"]?.text == "hello Stream" }
            }
            #expect(mirrored)
        }
        #expect(try await store.syncCursor(StreamChatDestination.mirror) == 2)
    }
}
