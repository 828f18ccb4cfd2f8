import Foundation
import Ticketlog
import ToolSupport

/// `POST /api/chat/tickets/{id}/messages` over loopback: the release `ticketlog serve` (FULL
/// durability, its default; rate limit off) under `wrk`, and a count of what reached the log.
enum HTTPLoad {
    struct Result {
        var connections: Int
        var seconds: Int
        var requestsPerSecond: Double
        /// Responses wrk counted, and those that were not 2xx.
        var responses: Int
        var failures: Int
        var socketErrors: String?
        var p50: String
        var p99: String
        /// Messages the log holds afterwards (in-flight requests at the end may add a few).
        var appended: Int64
    }

    static let secret = "ticketlog-bench-secret-of-at-least-32-bytes"

    static func measure(
        server: String, wrk: String, work: String, tickets: Int = 100, connections: Int = 16, seconds: Int = 15
    ) async throws -> Result {
        func path(_ name: String) -> String { (work as NSString).appendingPathComponent(name) }
        let database = path("http.sqlite")
        try? FileManager.default.removeItem(atPath: database)
        try await openTickets(tickets, in: database)

        let token = try LocalServer.run(
            server, ["token", "--subject", "bench", "--role", "admin"], environment: ["TICKETLOG_AUTH_SECRET": secret]
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try LocalServer.freePort()
        let serverLog = path("http-server.log")
        let serve = try await LocalServer.startServe(
            executable: server, database: database, port: port, secret: secret, log: serverLog)
        defer {
            if serve.isRunning {
                serve.terminate()
                serve.waitUntilExit()
            }
        }

        let script = path("post-message.lua")
        try luaScript(token: token, tickets: tickets).write(toFile: script, atomically: true, encoding: .utf8)
        let output = try LocalServer.run(
            wrk,
            [
                "-t1", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, "http://127.0.0.1:\(port)",
            ])
        serve.terminate()
        serve.waitUntilExit()
        guard serve.terminationStatus == 0 else {
            throw ToolError("ticketlog serve exited with \(serve.terminationStatus); see \(serverLog)")
        }

        let store = try EventStore(path: database)
        let appended = try await store.headPosition() - Int64(tickets)
        let parsed = WrkOutput(output)
        guard let rate = parsed.requestsPerSecond, let responses = parsed.responses else {
            throw ToolError("could not read wrk's output:\n\(output)")
        }
        return Result(
            connections: connections, seconds: seconds, requestsPerSecond: rate, responses: responses,
            failures: parsed.non2xx, socketErrors: parsed.socketErrors, p50: parsed.percentiles["50%"] ?? "–",
            p99: parsed.percentiles["99%"] ?? "–", appended: appended)
    }

    /// Tickets `bench-1` … `bench-N`, opened by an admin, so the load only posts messages.
    private static func openTickets(_ count: Int, in database: String) async throws {
        let store = try EventStore(path: database)
        let admin = Actor(id: "bench", role: .admin)
        for number in 1...count {
            guard let stream = StreamID.ticket("bench-\(number)") else { throw ToolError("bad ticket id") }
            _ = try await store.execute(
                .open(title: "Bench ticket \(number)", brand: "brand-\(number % 10)", creator: "creator-\(number)"),
                on: stream, by: admin)
        }
    }

    /// wrk's request generator: each request a new message to the next ticket in turn.
    private static func luaScript(token: String, tickets: Int) -> String {
        """
        local headers = { ["Authorization"] = "Bearer \(token)", ["Content-Type"] = "application/json" }
        local n = 0
        request = function()
          n = n + 1
          local body = '{"text":"Message ' .. n .. ' of the load run: thanks, the draft is in review and we will get back to you today."}'
          return wrk.format("POST", "/api/chat/tickets/bench-" .. (n % \(tickets) + 1) .. "/messages", headers, body)
        end

        """
    }
}

/// The figures of wrk's report (`wrk --latency`).
struct WrkOutput {
    var requestsPerSecond: Double?
    var responses: Int?
    var non2xx = 0
    var socketErrors: String?
    /// "50%" → "1.23ms", as wrk prints them.
    var percentiles: [String: String] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: \.isWhitespace)
            guard let first = words.first else { continue }
            if first == "Requests/sec:", words.count > 1 {
                requestsPerSecond = Double(words[1])
            } else if words.count > 2, words[1] == "requests", words[2] == "in" {
                responses = Int(first)
            } else if line.contains("Non-2xx or 3xx responses:"), let last = words.last {
                non2xx = Int(last) ?? 0
            } else if first == "Socket" {
                socketErrors = line.trimmingCharacters(in: .whitespaces)
            } else if words.count == 2, first.hasSuffix("%") {
                percentiles[String(first)] = String(words[1])
            }
        }
    }
}
