import Foundation
import Ticketlog

#if canImport(Glibc)
import Glibc
#endif

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

        let token = try run(server, ["token", "--subject", "bench", "--role", "admin", "--secret", secret])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try freePort()
        let serverLog = path("http-server.log")
        _ = FileManager.default.createFile(atPath: serverLog, contents: nil)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: server)
        serve.arguments = [
            "serve", "--database", database, "--port", String(port), "--auth-secret", secret, "--no-sync",
            "--rate-limit", "0", "--log-level", "warning",
        ]
        serve.standardOutput = FileHandle(forWritingAtPath: serverLog)
        serve.standardError = serve.standardOutput
        try serve.run()
        defer {
            if serve.isRunning {
                serve.terminate()
                serve.waitUntilExit()
            }
        }
        try await waitForListener(port: port, process: serve, log: serverLog)

        let script = path("post-message.lua")
        try luaScript(token: token, tickets: tickets).write(toFile: script, atomically: true, encoding: .utf8)
        let output = try run(wrk, [
            "-t1", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, "http://127.0.0.1:\(port)",
        ])
        serve.terminate()
        serve.waitUntilExit()
        guard serve.terminationStatus == 0 else {
            throw BenchError("ticketlog serve exited with \(serve.terminationStatus); see \(serverLog)")
        }

        let store = try EventStore(path: database)
        let appended = try await store.headPosition() - Int64(tickets)
        let parsed = WrkOutput(output)
        guard let rate = parsed.requestsPerSecond, let responses = parsed.responses else {
            throw BenchError("could not read wrk's output:\n\(output)")
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
            guard let stream = StreamID.ticket("bench-\(number)") else { throw BenchError("bad ticket id") }
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

    /// A port nothing listens on now (bound to 0, read, released).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw BenchError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until the server accepts connections (at most 30 s).
    private static func waitForListener(port: Int, process: Process, log: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw BenchError("ticketlog serve exited at start:\n\(text)")
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError("ticketlog serve did not listen on port \(port) within 30 s")
    }

    /// Runs a program to its end; its standard output, or an error with its exit status.
    private static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
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
