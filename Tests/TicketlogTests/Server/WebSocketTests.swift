import Foundation
import HummingbirdWSClient
import Logging
import Synchronization
import Testing
import ToolSupport

/// `GET /api/chat/tickets/:id/ws` (issue 18) on a real `ticketlog serve`: the ticket's events and
/// posting on one WebSocket, the token proven in the first message, access as the REST API's.
@Suite(.timeLimit(.minutes(2))) struct WebSocketTests {
    static let secret = "websocket-test-secret-of-at-least-32-bytes"

    /// Connects, sends each message once a received message contains its trigger (at once for
    /// none), calls `onReady` after `ready`, and returns every text message received until `done`
    /// holds or the server closes.
    static func converse(
        _ url: String, send messages: [(trigger: String?, text: String)],
        onReady: (@Sendable () throws -> Void)? = nil, until done: @escaping @Sendable ([String]) -> Bool
    ) async throws -> [String] {
        try await within(.seconds(30), "the WebSocket conversation") {
            let received = ReceivedMessages()
            try await WebSocketClient.connect(url: url, logger: Logger(label: "test")) { inbound, outbound, _ in
                var pending = messages[...]
                func sendDue(_ all: [String]) async throws {
                    while let next = pending.first,
                        next.trigger.map({ trigger in all.contains { $0.contains(trigger) } }) ?? true
                    {
                        try await outbound.write(.text(next.text))
                        pending.removeFirst()
                    }
                }
                try await sendDue([])
                var readied = false
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let all = received.append(text)
                    if !readied, text.contains(#""type":"ready""#) {
                        readied = true
                        try onReady?()
                    }
                    try await sendDue(all)
                    if done(all) { break }
                }
            }
            return received.all
        }
    }

    final class ReceivedMessages: @unchecked Sendable {
        private let lock = NSLock()
        private var messages: [String] = []
        func append(_ text: String) -> [String] {
            lock.lock()
            defer { lock.unlock() }
            messages.append(text)
            return messages
        }
        var all: [String] {
            lock.lock()
            defer { lock.unlock() }
            return messages
        }
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    /// On a file and on PostgreSQL: the server opens either from `--database`.
    @Test(arguments: StoreKind.allCases.filter { $0 != .inMemory })
    func aTicketsEventsAndPostsTravelOverOneWebSocket(_ kind: StoreKind) async throws {
        let directory = try TemporaryDirectory()
        let database =
            kind == .postgres
            ? PostgresTestServer.url(try await PostgresTestServer.freshDatabase()) : directory.path("ws.sqlite")
        let cli = CLITests.executable.path
        #expect(try await awaitProcess(CLITests.executable, ["demo", "--database", database]).status == 0)
        func token(_ subject: String, _ role: String) throws -> String {
            try LocalServer.run(
                cli, ["token", "--subject", subject, "--role", role],
                environment: ["TICKETLOG_AUTH_SECRET": Self.secret]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let port = try LocalServer.freePort()
        let server = try await LocalServer.startServe(
            executable: cli, database: database, port: port, secret: Self.secret, log: directory.path("server.log"))
        defer { server.terminate() }
        let url = "ws://127.0.0.1:\(port)/api/chat/tickets/1001/ws"
        let kim = try token("kim", "creator")
        let auth = #"{"type":"auth","token":"\#(kim)","after":0}"#
        let post = #"{"type":"post","messageId":"ws-1","text":"Over the socket"}"#

        // kim: the ticket's events from the start, then a post, its answer and its event; the
        // same post again (a retry under the same message id) is refused as existing, as the
        // REST API refuses it, and the message is stored once.
        let conversation = try await Self.converse(
            url, send: [(nil, auth), (#""type":"ready""#, post), (#""type":"posted""#, post)],
            until: { received in
                received.contains { $0.contains(#""code":"version_conflict""#) }
                    && received.contains { $0.contains(#""type":"event""#) && $0.contains("Over the socket") }
            })
        let types = conversation.map { Self.json($0)["type"] as? String ?? "?" }
        #expect(types.first == "ready", "\(conversation.prefix(3))")
        let events = conversation.map(Self.json).filter { $0["type"] as? String == "event" }
        let positions = events.compactMap { $0["id"] as? Int }
        #expect(positions.first == 1 && positions == positions.sorted() && Set(positions).count == positions.count)
        #expect(
            events.contains {
                (($0["event"] as? [String: Any])?["payload"] as? [String: Any])?["text"] as? String == "Over the socket"
            })
        #expect(types.filter { $0 == "posted" }.count == 1, "\(conversation.suffix(4))")
        #expect(
            conversation.map(Self.json).contains {
                $0["type"] as? String == "error" && $0["messageId"] as? String == "ws-1"
                    && ($0["message"] as? String ?? "").contains("exists already")
            })
        let stored = try LocalServer.run(
            "/usr/bin/curl",
            [
                "-s", "-H", "Authorization: Bearer \(kim)",
                "http://127.0.0.1:\(port)/api/chat/tickets/1001/messages?limit=500",
            ])
        #expect(stored.components(separatedBy: "Over the socket").count == 2, "the repeated post is stored once")

        // A refused post says why, and nothing is appended.
        let blank = try await Self.converse(
            url, send: [(nil, auth), (#""type":"ready""#, #"{"type":"post","text":"   "}"#)],
            until: { $0.contains { $0.contains(#""type":"error""#) } })
        #expect(
            blank.map(Self.json).contains {
                $0["type"] as? String == "error" && $0["code"] as? String == "invalid_event"
            }, "\(blank.suffix(2))")

        // Strangers, bad tokens and a first message that is not an auth are turned away.
        for (first, code) in [
            (#"{"type":"auth","token":"\#(try token("jo", "creator"))"}"#, "not_found"),
            (#"{"type":"auth","token":"not-a-token"}"#, "unauthorized"),
            (post, "unauthorized"),
        ] {
            let refused = try await Self.converse(url, send: [(nil, first)], until: { !$0.isEmpty })
            #expect(refused.map(Self.json).first?["code"] as? String == code, "\(refused)")
        }

        // sam, the assigned agent, is cut off when the ticket goes to lee.
        let sam = try token("sam", "agent")
        let ada = try token("ada", "admin")
        let assigned = Mutex("")
        let cut = try await Self.converse(
            url, send: [(nil, #"{"type":"auth","token":"\#(sam)","after":100}"#)],
            onReady: {
                let status = try LocalServer.run(
                    "/usr/bin/curl",
                    [
                        "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
                        "Authorization: Bearer \(ada)", "-H", "Content-Type: application/json",
                        "-d", #"{"agent":"lee"}"#, "http://127.0.0.1:\(port)/api/chat/tickets/1001/assign",
                    ])
                assigned.withLock { $0 = status }
            },
            until: { $0.contains { $0.contains("access-revoked") } })
        #expect(assigned.withLock { $0 } == "200", "the assignment to lee")
        #expect(cut.contains { $0.contains("access-revoked") }, "\(cut)")
    }

    /// A WebSocket is a request in progress: it outlives the head and idle deadlines the
    /// connection guard gives every connection from its accept. (The wait is the subject here:
    /// the deadlines must pass.)
    @Test func aWebSocketOutlivesTheConnectionDeadlines() async throws {
        let directory = try TemporaryDirectory()
        let database = directory.path("ws.sqlite")
        let cli = CLITests.executable.path
        #expect(try await awaitProcess(CLITests.executable, ["demo", "--database", database]).status == 0)
        let kim = try LocalServer.run(
            cli, ["token", "--subject", "kim", "--role", "creator"], environment: ["TICKETLOG_AUTH_SECRET": Self.secret]
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try LocalServer.freePort()
        let server = try await LocalServer.startServe(
            executable: cli, database: database, port: port, secret: Self.secret, log: directory.path("server.log"),
            extra: ["--request-head-timeout", "1", "--idle-timeout", "1"])
        defer { server.terminate() }
        let received = try await within(.seconds(30), "the WebSocket conversation") {
            let received = ReceivedMessages()
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)/api/chat/tickets/1001/ws", logger: Logger(label: "test")
            ) { inbound, outbound, _ in
                try await outbound.write(.text(#"{"type":"auth","token":"\#(kim)","after":100}"#))
                var posted = false
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    let all = received.append(text)
                    if text.contains(#""type":"ready""#) {
                        try await Task.sleep(for: .seconds(3))
                        try await outbound.write(.text(#"{"type":"post","messageId":"late","text":"after 3 s"}"#))
                    }
                    if all.contains(where: { $0.contains(#""type":"posted""#) }) {
                        posted = true
                        break
                    }
                }
                #expect(posted, "\(received.all)")
            }
            return received.all
        }
        #expect(received.contains { $0.contains(#""messageId":"late""#) && $0.contains("posted") }, "\(received)")
    }
}
