import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the tools that drive `ticketlog serve` from outside (the benchmark's HTTP row, the load
/// test) share: a free loopback port, waiting for the server to listen, running a command.
public enum LocalServer {
    /// A port nothing listens on now (bound to 0, read, released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ToolError("socket() failed") }
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw ToolError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until something accepts connections on `port` (at most 30 s); fails early, with the
    /// server's log, when `process` exits.
    public static func waitForListener(port: Int, process: Process, log: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw ToolError("the server exited at start:\n\(text)")
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ToolError("the server did not listen on port \(port) within 30 s")
    }

    /// Runs a program to its end, with `environment` added to this process's; its standard
    /// output, or an error with its exit status.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws
        -> String
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ToolError(
                "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// `ticketlog serve` on loopback with a fixed secret (in its environment, as
    /// `TICKETLOG_AUTH_SECRET`), no Stream mirror and no rate limits, logging to `log`; returns
    /// once it listens.
    ///
    /// - Parameters:
    ///   - prelude: shell commands run before the server starts, in its shell: limits
    ///     (`ulimit -n 256`), signal dispositions (`trap '' XFSZ`).
    ///   - environment: more variables for the server (e.g. Stream credentials).
    public static func startServe(
        executable: String, database: String, port: Int, secret: String, log: String, extra: [String] = [],
        prelude: String? = nil,
        environment extraEnvironment: [String: String] = [:]
    ) async throws -> Process {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let serve = Process()
        let arguments =
            [
                "serve", "--database", database, "--port", String(port), "--no-sync",
                "--rate-limit", "0", "--anonymous-rate-limit", "0", "--log-level", "warning",
            ] + extra
        if let prelude {
            serve.executableURL = URL(fileURLWithPath: "/bin/sh")
            serve.arguments = ["-c", "\(prelude); exec \"$0\" \"$@\"", executable] + arguments
        } else {
            serve.executableURL = URL(fileURLWithPath: executable)
            serve.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["TICKETLOG_AUTH_SECRET"] = secret
        for name in ["STREAM_API_KEY", "STREAM_API_SECRET", "TICKETLOG_METRICS_TOKEN"] { environment[name] = nil }
        environment.merge(extraEnvironment) { $1 }
        serve.environment = environment
        serve.standardOutput = FileHandle(forWritingAtPath: log)
        serve.standardError = serve.standardOutput
        try serve.run()
        do {
            try await waitForListener(port: port, process: serve, log: log)
        } catch {
            if serve.isRunning { serve.terminate() }
            throw error
        }
        return serve
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }
}

/// A tool's failure, said in one line.
public struct ToolError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
