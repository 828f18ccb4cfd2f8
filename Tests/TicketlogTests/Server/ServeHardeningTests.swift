import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import ToolSupport

@testable import StreamChatSync
@testable import Ticketlog

#if canImport(Glibc)
    import Glibc
#endif

/// `ticketlog serve` as a process, attacked from outside (issue 13): secrets without silent
/// defaults, and a server that cannot be starved of connections.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ServeHardeningTests {
    static let secret = "serve-hardening-secret-of-32-bytes!!"
    /// The development secrets an attacker can read in the source (the old one and today's).
    static let publicSecrets = [
        "ticketlog-development-secret-change-me", "ticketlog-development-stream-secret-change-me",
    ]

    static func get(_ url: String, headers: [(String, String)] = []) async throws -> (status: UInt, body: String) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, String(buffer: body))
    }

    static func post(_ url: String, body: Data, headers: [(String, String)]) async throws -> (
        status: UInt, body: String
    ) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (response.status.code, String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// 1. With TICKETLOG_AUTH_SECRET set and no Stream secret, `serve` used to check webhooks
    /// with the development secret from the source, silently: a forged `channel.truncated` and
    /// `channel.updated` deleted every message of a ticket, closed it and assigned an agent. Now
    /// webhooks are off (503) and the server says so on stderr and in /healthz.
    @Test func withoutAStreamSecretWebhooksAreOffNotCheckedWithAPublicSecret() async throws {
        let directory = try TemporaryDirectory()
        let database = directory.path("log.sqlite")
        #expect(try CLITests.run("demo", "--database", database, "--durability", "normal").status == 0)
        let before = try await HostileRequestTests.digest(try EventStore(path: database))
        let port = try LocalServer.freePort()
        let log = directory.path("serve.log")
        let serve = try await LocalServer.startServe(
            executable: CLITests.executable.path, database: database, port: port, secret: Self.secret, log: log)
        defer { serve.terminate() }
        let base = "http://127.0.0.1:\(port)"

        let health = try await Self.get("\(base)/healthz")
        #expect(health.status == 200)
        let features = try #require(try JSONSerialization.jsonObject(with: Data(health.body.utf8)) as? [String: Any])
        #expect(features["mode"] as? String == "production")
        #expect((features["features"] as? [String: String])?["webhooks"] == "off", "\(health.body)")

        let attacks: [[String: Any]] = [
            [
                "type": "channel.truncated", "channel_id": "ticket-1001", "created_at": "2099-01-01T00:00:00Z",
                "user": ["id": "sam"],
                "channel": ["id": "ticket-1001", "truncated_at": "2099-01-01T00:00:00Z"],
            ],
            [
                "type": "channel.updated", "channel_id": "ticket-1001", "created_at": "2099-01-01T00:00:01Z",
                "user": ["id": "sam"],
                "channel": ["id": "ticket-1001", "ticket_status": "closed", "ticket_agent": "mallory"],
            ],
        ]
        for attack in attacks {
            let body = try JSONSerialization.data(withJSONObject: attack)
            for secret in Self.publicSecrets {
                let response = try await Self.post(
                    "\(base)/webhooks/stream", body: body,
                    headers: [
                        ("Content-Type", "application/json"),
                        ("X-Signature", WebhookSignature.sign(body, secret: secret)),
                    ])
                #expect(response.status == 503, "\(response.body)")
                #expect(response.body.contains("no Stream API secret"))
            }
        }
        let chatToken = try await Self.get(
            "\(base)/api/chat/token",
            headers: [
                (
                    "Authorization",
                    "Bearer "
                        + (try LocalServer.run(
                            CLITests.executable.path, ["token", "--subject", "kim", "--role", "creator"],
                            environment: ["TICKETLOG_AUTH_SECRET": Self.secret])).trimmingCharacters(
                            in: .whitespacesAndNewlines)
                )
            ])
        #expect(chatToken.status == 503, "no chat tokens signed with a public secret either")
        serve.terminate()
        serve.waitUntilExit()
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(output.contains("webhooks are off"), "\(output)")
        #expect(try await HostileRequestTests.digest(try EventStore(path: database)) == before, "the log is as before")
    }

    /// No production secret has a silent default: without one `serve` refuses to start and
    /// says how to give it one; `--development` starts on the public secrets and says so loudly.
    @Test func serveNeedsASecretOrSaysItIsInDevelopment() async throws {
        let directory = try TemporaryDirectory()
        let database = directory.path("log.sqlite")
        let refused = try await awaitProcess(
            CLITests.executable, ["serve", "--database", database, "--port", String(try LocalServer.freePort())],
            environment: ["TICKETLOG_AUTH_SECRET": nil, "STREAM_API_KEY": nil, "STREAM_API_SECRET": nil])
        #expect(refused.status == 2, "\(refused.stdout)\(refused.stderr)")
        #expect(
            refused.stderr.contains("TICKETLOG_AUTH_SECRET") && refused.stderr.contains("--development"),
            "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: database), "nothing is created before the secrets are known")

        // The secret never goes on the command line, where ps shows it.
        let onTheCommandLine = try runProcess(
            CLITests.executable, ["serve", "--database", database, "--auth-secret", Self.secret])
        #expect(onTheCommandLine.status == 64 && onTheCommandLine.stderr.contains("--auth-secret"))

        let port = try LocalServer.freePort()
        let log = directory.path("dev.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let serve = Process()
        serve.executableURL = CLITests.executable
        serve.arguments = ["serve", "--development", "--database", database, "--port", String(port), "--no-sync"]
        var environment = ProcessInfo.processInfo.environment
        for name in ["TICKETLOG_AUTH_SECRET", "STREAM_API_KEY", "STREAM_API_SECRET"] { environment[name] = nil }
        serve.environment = environment
        serve.standardOutput = FileHandle(forWritingAtPath: log)
        serve.standardError = serve.standardOutput
        try serve.run()
        defer { serve.terminate() }
        try await LocalServer.waitForListener(port: port, process: serve, log: log)
        let health = try await Self.get("http://127.0.0.1:\(port)/healthz")
        #expect(health.body.contains(#""mode":"development""#), "\(health.body)")
        // The banner's token for the sample ticket's creator is a creator's: accepted, and refused
        // what only admins and brands may do.
        let banner = try String(contentsOfFile: log, encoding: .utf8)
        let creatorToken = try #require(
            banner.split(separator: "\n").first { $0.hasPrefix("  kim (creator): ") }?
                .dropFirst("  kim (creator): ".count))
        let asCreator = [("Authorization", "Bearer \(creatorToken)")]
        #expect(try await Self.get("http://127.0.0.1:\(port)/api/chat/channels", headers: asCreator).status == 200)
        let opened = try await Self.post(
            "http://127.0.0.1:\(port)/api/chat/tickets",
            body: Data(#"{"ticketId":"9","title":"t","brand":"acme","creator":"kim"}"#.utf8),
            headers: asCreator + [("content-type", "application/json")])
        #expect(opened.status == 403, "\(opened.body)")
        serve.terminate()
        serve.waitUntilExit()
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(output.contains("DEVELOPMENT MODE") && output.contains("PUBLIC development secret"), "\(output)")
        #expect(output.contains("export TOKEN="), "a development server prints a token to try it with")
    }

    /// The server's own log quotes what Stream sent (user ids, reasons): an operator reading it
    /// in a terminal gets no forged line and no escape sequence from it.
    @Test func theServersLogEscapesWhatClientsSent() async throws {
        let directory = try TemporaryDirectory()
        let database = directory.path("log.sqlite")
        #expect(try CLITests.run("demo", "--database", database, "--durability", "normal").status == 0)
        let port = try LocalServer.freePort()
        let log = directory.path("serve.log")
        let streamSecret = "hardening-stream-secret-of-32-bytes!"
        let serve = try await LocalServer.startServe(
            executable: CLITests.executable.path, database: database, port: port, secret: Self.secret, log: log,
            environment: ["STREAM_API_KEY": "k", "STREAM_API_SECRET": streamSecret])
        defer { serve.terminate() }
        let forged = "2026-11-29T10:00:00+0000 critical ticketlog: verify FAILED"
        let body = try JSONSerialization.data(
            withJSONObject: [
                "type": "message.new", "channel_id": "ticket-1001", "created_at": "2026-11-29T10:00:00Z",
                "user": ["id": "kim\u{1B}[2J\n" + forged], "request_info": ["type": "client"],
                "message": ["id": "x", "text": "hi", "user": ["id": "kim\u{1B}[2J\n" + forged]],
            ] as [String: Any])
        let response = try await Self.post(
            "http://127.0.0.1:\(port)/webhooks/stream", body: body,
            headers: [
                ("Content-Type", "application/json"),
                ("X-Signature", WebhookSignature.sign(body, secret: streamSecret)),
            ])
        #expect(response.status == 200 && response.body.contains("refused"), "\(response.body)")
        serve.terminate()
        serve.waitUntilExit()
        let output = try Data(contentsOf: URL(fileURLWithPath: log))
        let text = String(decoding: output, as: UTF8.self)
        #expect(text.contains("Change from Stream refused"), "\(text)")
        #expect(!output.contains(0x1B), "no escape byte reaches the operator's terminal")
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix(forged) }, "no forged line: \(text)")
    }

    /// A failed append under `serve` reaches the operator: the store's error is logged through
    /// the process's logger, with the id of the request that hit it (the response's
    /// `X-Request-Id`). Here the disk fills up (a file size limit, SIGXFSZ ignored).
    @Test func aFailedAppendIsLoggedWithItsRequestID() async throws {
        let directory = try TemporaryDirectory()
        let database = directory.path("log.sqlite")
        #expect(try CLITests.run("demo", "--database", database, "--durability", "normal").status == 0)
        let size = (try FileManager.default.attributesOfItem(atPath: database)[.size] as? Int) ?? 0
        let port = try LocalServer.freePort()
        let log = directory.path("serve.log")
        // The WAL may grow to 1 MiB beyond the file's size: a few hundred posts fill it.
        let serve = try await LocalServer.startServe(
            executable: CLITests.executable.path, database: database, port: port, secret: Self.secret, log: log,
            prelude: "trap '' XFSZ; ulimit -f \(size / 1024 + 1024)")
        defer { serve.terminate() }
        let token = try LocalServer.run(
            CLITests.executable.path, ["token", "--subject", "ada", "--role", "admin"],
            environment: ["TICKETLOG_AUTH_SECRET": Self.secret]
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        var failed: (requestID: String, body: String)?
        for number in 0..<2_000 where failed == nil {
            // Text that does not compress: the WAL grows by about its size.
            let text = (0..<80).map { _ in UUID().uuidString }.joined(separator: " ")
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/chat/tickets/1001/messages")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"text":"\#(number): \#(text)"}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            if response.status.code == 503 { failed = (response.headers.first(name: "X-Request-Id") ?? "?", body) }
        }
        let (requestID, body) = try #require(failed, "the disk never filled up")
        #expect(body.contains("unavailable"), "\(body)")
        serve.terminate()
        serve.waitUntilExit()
        let output = try String(contentsOfFile: log, encoding: .utf8)
        // The first failure is this request's: its line must not name a request answered before
        // (the writer's queue is drained by a task the first appender started, which once
        // carried that appender's id into every later failure it logged).
        let line = output.split(separator: "\n").first { $0.contains("Append transaction failed") }
        #expect(line != nil, "the failure reached the log: \(output.suffix(2_000))")
        #expect(line?.contains("ticketlog.request=\(requestID)") == true, "with the request's id: \(line ?? "")")
        #expect(
            line?.contains("full") == true || line?.contains("disk") == true || line?.contains("13") == true,
            "and why: \(line ?? "")")
    }

    /// 4. No idle timeout: 300 half-sent requests stayed open for 90 s and, with a 256-file
    /// limit, /healthz stopped answering — a denial of service without credentials. Now the
    /// connection waiting longest is closed to make room, and each is closed at its deadline.
    /// Both with the WebSocket upgrade (the default since issue 18: the guard holds each
    /// connection from its accept, `AcceptGuard`) and with plain HTTP/1 (`--no-websockets`).
    /// Each phase's deadline closes a connection at its time, neither much before nor much after,
    /// and a connection kept busy is never closed by a deadline of an earlier phase (the server
    /// keeps one timer per connection and moves the deadline, not the timer).
    @Test func eachPhasesDeadlineClosesAConnectionAtItsTime() async throws {
        let directory = try TemporaryDirectory()
        let port = try LocalServer.freePort()
        let serve = try await LocalServer.startServe(
            executable: CLITests.executable.path, database: directory.path("log.sqlite"), port: port,
            secret: Self.secret, log: directory.path("serve.log"),
            extra: [
                "--request-head-timeout", "1", "--request-body-timeout", "1.5", "--idle-timeout", "2.5",
                "--no-websockets",
            ])
        defer { serve.terminate() }
        let request = "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"

        /// Seconds until the server closes `fd` (at most 8).
        func secondsUntilClosed(_ fd: Int32) -> Double {
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(8) {
                if RawSocket.closed([fd], within: 0.05) == [fd] { break }
            }
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }

        // Idle after an answer: the idle deadline (2.5 s).
        let idle = try RawSocket.connect(port: port)
        defer { close(idle) }
        RawSocket.send(idle, request)
        #expect(RawSocket.receive(idle, timeout: 5)?.hasPrefix("HTTP/1.1 200") == true)
        let idleFor = secondsUntilClosed(idle)
        #expect(idleFor > 2.0 && idleFor < 3.5, "idle connection closed after \(idleFor) s")

        // A head without its body: the body deadline (1.5 s).
        let body = try RawSocket.connect(port: port)
        defer { close(body) }
        RawSocket.send(body, "POST /api/tickets HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{")
        let bodyFor = secondsUntilClosed(body)
        #expect(bodyFor > 1.0 && bodyFor < 2.5, "a missing body waited \(bodyFor) s")

        // Half a head: the head deadline (1 s).
        let head = try RawSocket.connect(port: port)
        defer { close(head) }
        RawSocket.send(head, "GET /healthz HTTP/1.1\r\nHost: te")
        let headFor = secondsUntilClosed(head)
        #expect(headFor > 0.5 && headFor < 2.0, "half a head waited \(headFor) s")

        // A request every 0.4 s for 4 s: longer than every deadline, never past one.
        let busy = try RawSocket.connect(port: port)
        defer { close(busy) }
        for round in 0..<10 {
            RawSocket.send(busy, request)
            let answer = RawSocket.receive(busy, timeout: 3) ?? "(nothing)"
            #expect(answer.hasPrefix("HTTP/1.1 200"), "round \(round): \(answer.prefix(100))")
            #expect(RawSocket.closed([busy], within: 0.4).isEmpty, "closed while in use, round \(round)")
        }
    }

    @Test(arguments: [false, true]) func threeHundredIdleConnectionsDoNotStarveHealthz(webSockets: Bool) async throws {
        let directory = try TemporaryDirectory()
        let port = try LocalServer.freePort()
        let log = directory.path("serve.log")
        let serve = try await LocalServer.startServe(
            executable: CLITests.executable.path, database: directory.path("log.sqlite"), port: port,
            secret: Self.secret, log: log,
            extra: ["--request-head-timeout", "3", "--log-level", "notice"] + (webSockets ? [] : ["--no-websockets"]),
            prelude: "ulimit -n 256")
        defer { serve.terminate() }

        var attackers: [Int32] = []
        defer { for fd in attackers { close(fd) } }
        func attack(_ count: Int) throws {
            for _ in 0..<count {
                let fd = try RawSocket.connect(port: port)
                RawSocket.send(fd, "GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Slow: ")
                attackers.append(fd)
            }
        }
        try attack(300)
        for round in 0..<10 {
            let probe = try RawSocket.connect(port: port)
            defer { close(probe) }
            RawSocket.send(probe, "GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            let answer = RawSocket.receive(probe, timeout: 5) ?? "(no answer within 5 s)"
            #expect(answer.hasPrefix("HTTP/1.1 200"), "round \(round): \(answer.prefix(200))")
            try attack(30)  // and the attacker keeps coming
        }
        #expect(serve.isRunning)

        // The half-sent requests are not held: those pushed out for room are closed already,
        // the rest at the head deadline (3 s).
        let deadline = ContinuousClock.now + .seconds(15)
        var open = Set(attackers)
        while !open.isEmpty, ContinuousClock.now < deadline {
            open.subtract(RawSocket.closed(Array(open), within: 0.2))
        }
        #expect(open.isEmpty, "\(open.count) of \(attackers.count) half-sent requests still held after 15 s")
        let metrics = try await Self.get("http://127.0.0.1:\(port)/metrics").body
        #expect(metrics.contains("ticketlog_connections_shed "), "\(metrics.prefix(400))")
        #expect(!metrics.contains("ticketlog_connections_shed 0\n"))
        #expect(!metrics.contains("ticketlog_connections_timed_out 0\n"))
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(output.contains("At most 192 connections"), "the limit follows the file limit: \(output)")
    }
}

/// Blocking POSIX sockets on loopback, for clients that misbehave on purpose.
enum RawSocket {
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ToolError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(fd)
            throw ToolError("connect() failed: errno \(errno)")
        }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Which of `fds` the peer closed (or reset), waiting at most `timeout` seconds for any.
    static func closed(_ fds: [Int32], within timeout: Double) -> [Int32] {
        var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard poll(&polls, nfds_t(polls.count), Int32(timeout * 1_000)) > 0 else { return [] }
        return polls.filter { $0.revents != 0 }.map(\.fd).filter { receive($0, timeout: 0) == "" }
    }

    /// What arrives within `timeout` seconds: the text, `""` when the peer closed the
    /// connection (or reset it), `nil` when nothing came.
    static func receive(_ fd: Int32, timeout: Double) -> String? {
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollFD, 1, Int32(timeout * 1_000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : ""
    }
}
