import Foundation
import Ticketlog
import TicketlogPostgres
import ToolSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP rows (issue 14), each `wrk` over loopback for the same time: the framework's ceiling
/// (``Ceiling``: the same route and body, nothing stored), `POST /api/chat/tickets/{id}/messages`
/// and `GET …/messages?limit=50` on the release `ticketlog serve` (FULL, rate limits off); the
/// server's CPU time per request from `/proc`, and a count of what reached the log.
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
        /// The server's CPU time (user + system) per response, in microseconds.
        var cpuMicrosecondsPerRequest: Double
    }

    /// Every round's runs; the rows compared are the fastest of each (noise only slows a run
    /// down, and a single ceiling run that fell in a slow moment once made `POST` look 20%
    /// closer to it than the rounds around it).
    struct Rows {
        var ceilings: [Result]
        var posts: [Result]
        var gets: [Result]
        /// Messages the log holds after the POST runs (in-flight requests at the ends may add a few).
        var appended: Int64

        var ceiling: Result { Self.fastest(ceilings) }
        var post: Result { Self.fastest(posts) }
        var get: Result { Self.fastest(gets) }
        /// 2xx responses of every POST run: what `appended` should equal.
        var postResponses: Int { posts.map { $0.responses - $0.failures }.reduce(0, +) }

        private static func fastest(_ results: [Result]) -> Result {
            results.max { $0.requestsPerSecond < $1.requestsPerSecond }!
        }
    }

    static let secret = "ticketlog-bench-secret-of-at-least-32-bytes"

    /// `rounds` rounds of the ceiling, `POST` and `GET`, one after the other, each `seconds` long.
    static func measure(
        server: String, bench: String, wrk: String, work: String, tickets: Int = 100, connections: Int = 16,
        seconds: Int = 15, rounds: Int = 2
    ) async throws -> Rows {
        func path(_ name: String) -> String { (work as NSString).appendingPathComponent(name) }
        let database = path("http.sqlite")
        try? FileManager.default.removeItem(atPath: database)
        try await openTickets(tickets, in: database)
        let token = try LocalServer.run(
            server, ["token", "--subject", "bench", "--role", "admin"], environment: ["TICKETLOG_AUTH_SECRET": secret]
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        let post = path("post-message.lua")
        try postScript(token: token, tickets: tickets).write(toFile: post, atomically: true, encoding: .utf8)
        let get = path("get-messages.lua")
        try getScript(token: token, tickets: tickets).write(toFile: get, atomically: true, encoding: .utf8)

        func run(_ process: Process, port: Int, script: String) throws -> Result {
            let before = cpuSeconds(of: process.processIdentifier)
            let output = try LocalServer.run(
                wrk,
                ["-t1", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, "http://127.0.0.1:\(port)"])
            let cpu = cpuSeconds(of: process.processIdentifier) - before
            let parsed = WrkOutput(output)
            guard let rate = parsed.requestsPerSecond, let responses = parsed.responses, responses > 0 else {
                throw ToolError("could not read wrk's output:\n\(output)")
            }
            return Result(
                connections: connections, seconds: seconds, requestsPerSecond: rate, responses: responses,
                failures: parsed.non2xx, socketErrors: parsed.socketErrors, p50: parsed.percentiles["50%"] ?? "–",
                p99: parsed.percentiles["99%"] ?? "–", cpuMicrosecondsPerRequest: cpu / Double(responses) * 1e6)
        }
        func stop(_ process: Process) {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }

        var rows = Rows(ceilings: [], posts: [], gets: [], appended: 0)
        for _ in 0..<max(1, rounds) {
            // The ceiling: this executable as a bare server.
            let ceilingPort = try LocalServer.freePort()
            let ceiling = Process()
            ceiling.executableURL = URL(fileURLWithPath: bench)
            ceiling.arguments = ["--child", "ceiling", "--port", String(ceilingPort)]
            ceiling.standardOutput = FileHandle.nullDevice
            ceiling.standardError = FileHandle.nullDevice
            try ceiling.run()
            defer { stop(ceiling) }
            try await LocalServer.waitForListener(port: ceilingPort, process: ceiling, log: "/dev/null")
            rows.ceilings.append(try run(ceiling, port: ceilingPort, script: post))
            stop(ceiling)

            let serverLog = path("http-server.log")
            var port = try LocalServer.freePort()
            var serve = try await LocalServer.startServe(
                executable: server, database: database, port: port, secret: secret, log: serverLog)
            defer { stop(serve) }
            rows.posts.append(try run(serve, port: port, script: post))
            stop(serve)
            guard serve.terminationStatus == 0 else {
                throw ToolError("ticketlog serve exited with \(serve.terminationStatus); see \(serverLog)")
            }

            port = try LocalServer.freePort()
            serve = try await LocalServer.startServe(
                executable: server, database: database, port: port, secret: secret, log: serverLog)
            rows.gets.append(try run(serve, port: port, script: get))
            stop(serve)
        }
        rows.appended = try await EventStore(path: database).headPosition() - Int64(tickets)
        return rows
    }

    /// User and system time a process has used, in seconds (`/proc/PID/stat`, fields 14 and 15).
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Tickets `bench-1` … `bench-N`, opened by an admin, so the load only posts messages.
    private static func openTickets(_ count: Int, in database: String) async throws {
        try await openTickets(count, in: try EventStore(path: database))
    }

    private static func openTickets(_ count: Int, in store: EventStore) async throws {
        let admin = Actor(id: "bench", role: .admin)
        for number in 1...count {
            guard let stream = StreamID.ticket("bench-\(number)") else { throw ToolError("bad ticket id") }
            _ = try await store.execute(
                .open(title: "Bench ticket \(number)", brand: "brand-\(number % 10)", creator: "creator-\(number)"),
                on: stream, by: admin)
        }
    }

    /// wrk's request generator: each request a new message to the next ticket in turn.
    private static func postScript(token: String, tickets: Int) -> String {
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

    /// Each request the newest page of 50 messages of the next ticket in turn.
    private static func getScript(token: String, tickets: Int) -> String {
        """
        local headers = { ["Authorization"] = "Bearer \(token)" }
        local n = 0
        request = function()
          n = n + 1
          return wrk.format("GET", "/api/chat/tickets/bench-" .. (n % \(tickets) + 1) .. "/messages?limit=50&direction=backwards", headers)
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

extension HTTPLoad {
    /// Issue 19's HTTP row: `POST …/messages` on a PostgreSQL log served by one node, then by
    /// three nodes at once (one `wrk` per node, the same 16 connections in all), for the same
    /// time. What a second and third machine would add shows only where each node has cores of
    /// its own; on one machine the nodes share its cores with each other and the server.
    struct Nodes {
        var one: Result
        /// Requests per second of the three `wrk`s together, their responses and non-2xx answers,
        /// and the worst of their p99s.
        var three: Double
        var threeResponses: Int
        var threeFailures: Int
        var threeP99: String
    }

    static func measureNodes(server: String, wrk: String, work: String, url: String, seconds: Int, tickets: Int = 100)
        async throws -> Nodes
    {
        func path(_ name: String) -> String { (work as NSString).appendingPathComponent(name) }
        let store = try await EventStore.open(database: url)
        try await openTickets(tickets, in: store)
        await store.close()
        let token = try LocalServer.run(
            server, ["token", "--subject", "bench", "--role", "admin"], environment: ["TICKETLOG_AUTH_SECRET": secret]
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        let post = path("post-message-nodes.lua")
        try postScript(token: token, tickets: tickets).write(toFile: post, atomically: true, encoding: .utf8)

        /// Starts `wrk` with `connections` against `port`; its output once it ends.
        func wrkProcess(port: Int, connections: Int) throws -> (Process, Pipe) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: wrk)
            process.arguments = [
                "-t1", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", post, "http://127.0.0.1:\(port)",
            ]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, pipe)
        }
        func output(_ running: (Process, Pipe)) throws -> WrkOutput {
            let data = running.1.fileHandleForReading.readDataToEndOfFile()
            running.0.waitUntilExit()
            let parsed = WrkOutput(String(decoding: data, as: UTF8.self))
            guard parsed.requestsPerSecond != nil, (parsed.responses ?? 0) > 0 else {
                throw ToolError("could not read wrk's output:\n\(String(decoding: data, as: UTF8.self))")
            }
            return parsed
        }
        var nodes: [Process] = []
        var ports: [Int] = []
        defer {
            for node in nodes where node.isRunning {
                node.terminate()
                node.waitUntilExit()
            }
        }
        for index in 0..<3 {
            let port = try LocalServer.freePort()
            nodes.append(
                try await LocalServer.startServe(
                    executable: server, database: url, port: port, secret: secret,
                    log: path("http-node-\(index + 1).log")))
            ports.append(port)
        }
        let before = cpuSeconds(of: nodes[0].processIdentifier)
        let alone = try output(try wrkProcess(port: ports[0], connections: 16))
        let cpu = cpuSeconds(of: nodes[0].processIdentifier) - before
        let one = Result(
            connections: 16, seconds: seconds, requestsPerSecond: alone.requestsPerSecond ?? 0,
            responses: alone.responses ?? 0, failures: alone.non2xx, socketErrors: alone.socketErrors,
            p50: alone.percentiles["50%"] ?? "–", p99: alone.percentiles["99%"] ?? "–",
            cpuMicrosecondsPerRequest: cpu / Double(max(1, alone.responses ?? 0)) * 1e6)
        let running = try zip(ports, [6, 5, 5]).map { try wrkProcess(port: $0, connections: $1) }
        let together = try running.map(output)
        return Nodes(
            one: one, three: together.compactMap(\.requestsPerSecond).reduce(0, +),
            threeResponses: together.compactMap(\.responses).reduce(0, +),
            threeFailures: together.map(\.non2xx).reduce(0, +),
            threeP99: together.compactMap { $0.percentiles["99%"] }.max { milliseconds($0) < milliseconds($1) } ?? "–")
    }

    /// wrk's "1.23ms", "456.00us", "1.02s" in milliseconds.
    static func milliseconds(_ text: String) -> Double {
        if text.hasSuffix("ms") { return Double(text.dropLast(2)) ?? 0 }
        if text.hasSuffix("us") { return (Double(text.dropLast(2)) ?? 0) / 1_000 }
        if text.hasSuffix("s") { return (Double(text.dropLast(1)) ?? 0) * 1_000 }
        return 0
    }
}
