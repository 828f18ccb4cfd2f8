import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Synchronization
import Testing
import Ticketlog
import TicketlogPostgres

/// The tests' PostgreSQL server (issue 19): `TICKETLOG_POSTGRES_URL` when set (an admin URL,
/// e.g. from `Tools/Postgres/cluster.sh run -- swift test`), else a throw-away cluster this
/// process starts with `Tools/Postgres/cluster.sh` on a free loopback port and stops at exit.
/// Only `TICKETLOG_NO_POSTGRES=1` skips the tests that need it; a server that cannot start
/// fails them.
enum PostgresTestServer {
    static let skipped = ProcessInfo.processInfo.environment["TICKETLOG_NO_POSTGRES"] == "1"
    static let skipReason: Comment =
        "TICKETLOG_NO_POSTGRES=1: THE POSTGRESQL TESTS ARE SKIPPED (the storage boundary's second backend is not tested)"

    /// The admin URL (database `postgres`), starting the cluster on first use. The start (a few
    /// seconds of initdb) waits on a thread of its own, not on one of Swift's cooperative
    /// threads, which the in-process servers of the tests running beside it need.
    static func admin() async throws -> PostgresLocation {
        let task = startup.withLock { task in
            if let task { return task }
            let started = Task { try await start() }
            task = started
            return started
        }
        return try await task.value
    }

    private static let startup = Mutex<Task<PostgresLocation, any Error>?>(nil)

    private static func start() async throws -> PostgresLocation {
        if let url = ProcessInfo.processInfo.environment["TICKETLOG_POSTGRES_URL"], !url.isEmpty {
            return try PostgresLocation(url: url)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ticketlog-pg-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Bounded: a start that hangs fails every test that needs the server, in two minutes
        // and with the script's output, instead of holding the whole run.
        let started = try await awaitProcess(
            URL(fileURLWithPath: "/usr/bin/timeout"), ["--kill-after=5", "120", script.path, "start", directory])
        guard started.status == 0 else {
            throw ServerError(
                message:
                    "cannot start PostgreSQL (Tools/Postgres/cluster.sh start\(started.status == 124 ? ", stopped after 120 s" : "")): \(started.stdout)\(started.stderr)"
            )
        }
        clusterDirectory = (script.path, directory)
        atexit {
            guard let (script, directory) = PostgresTestServer.clusterDirectory else { return }
            _ = try? runProcess(URL(fileURLWithPath: script), ["stop", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        return try PostgresLocation(url: started.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tools/Postgres/cluster.sh")

    nonisolated(unsafe) private static var clusterDirectory: (script: String, directory: String)?

    struct ServerError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// A new, empty database on the server, for one test (a copy of `template` when given).
    static func freshDatabase(template: String? = nil) async throws -> PostgresLocation {
        let admin = try await admin()
        let name = "t_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try await execute("CREATE DATABASE \(name)" + (template.map { " TEMPLATE \($0)" } ?? ""), on: admin)
        var location = admin
        location.database = name
        return location
    }

    /// A fresh database holding an empty log (the log's tables and projections, no events): a
    /// copy of a template made once per run, so that each of the many cases of the suites
    /// parameterised over both backends does not create the schema statement by statement.
    static func freshLog() async throws -> PostgresLocation {
        let template = try await logTemplate.withLock { task in
            if let task { return task }
            let made = Task { try await makeLogTemplate() }
            task = made
            return made
        }.value
        return try await freshDatabase(template: template)
    }

    private static let logTemplate = Mutex<Task<String, any Error>?>(nil)

    private static func makeLogTemplate() async throws -> String {
        let location = try await freshDatabase()
        let store = try await EventStore.open(location)
        await store.close()
        return location.database
    }

    /// Runs one statement as the server's superuser (tests that tamper, or set up other formats).
    static func execute(_ sql: String, on location: PostgresLocation) async throws {
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 99,
            logger: Logger(label: "tests"))
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "tests"))
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// The admin URL with its password, as a command line takes it.
    static func url(_ location: PostgresLocation) -> String {
        "postgres://\(location.user):\(location.password ?? "")@\(location.host):\(location.port)/\(location.database)"
    }
}

/// A cluster of one test's own, for a test that stops or restarts the server (the shared one
/// serves the tests running beside it). Stopped and removed by ``remove()``.
struct PrivateCluster: Sendable {
    let directory: String
    let location: PostgresLocation

    static func start() async throws -> PrivateCluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ticketlog-pg-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cluster = PrivateCluster(directory: directory, location: try await Self.run("start", directory))
        return cluster
    }

    /// `cluster.sh COMMAND` on this cluster: `stop`, `resume`, `restart`.
    func callAsFunction(_ command: String) async throws {
        _ = try await Self.run(command, directory)
    }

    func remove() async {
        _ = try? await Self.run("stop", directory)
        try? FileManager.default.removeItem(atPath: directory)
    }

    @discardableResult
    private static func run(_ command: String, _ directory: String) async throws -> PostgresLocation {
        let result = try await awaitProcess(PostgresTestServer.script, [command, directory])
        guard result.status == 0 else {
            throw PostgresTestServer.ServerError(message: "cluster.sh \(command) failed: \(result.stderr)")
        }
        let url = (try? String(contentsOfFile: directory + "/url", encoding: .utf8)) ?? ""
        return try PostgresLocation(url: url.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
