import Foundation
import Synchronization
import Testing
import TicketlogPostgres

@testable import Ticketlog

/// A directory removed when the value goes away (and, for a store on PostgreSQL, the store's
/// place among those open at once given back: ``PostgresStoreLeases``).
final class TemporaryDirectory: Sendable {
    let url: URL
    private let onRelease: (@Sendable () -> Void)?

    init(onRelease: (@Sendable () -> Void)? = nil) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("ticketlog-tests-\(UUID().uuidString)")
        self.onRelease = onRelease
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit {
        try? FileManager.default.removeItem(at: url)
        onRelease?()
    }
}

/// How many PostgreSQL stores the tests hold open at once. Swift Testing starts every case of
/// every suite together; hundreds of cases each holding a database's connections would exceed
/// the server's `max_connections` (and the machine's memory). A case waits for a lease when
/// it opens its store and gives it back when the directory returned with the store goes.
actor PostgresStoreLeases {
    static let shared = PostgresStoreLeases(40)

    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { available = count }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            available += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}

/// Where a test's store lives: every kind must behave the same. The suites that take
/// ``allCases`` run on both backends (issue 19); ``files`` is for tests about SQLite itself.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inMemory
    case file
    /// A fresh database on the tests' PostgreSQL server (``PostgresTestServer``).
    case postgres

    var testDescription: String { rawValue }

    /// Every kind; without PostgreSQL only when `TICKETLOG_NO_POSTGRES=1` (said loudly by the
    /// PostgreSQL suite).
    static var allCases: [StoreKind] { PostgresTestServer.skipped ? files : [.inMemory, .file, .postgres] }

    /// The SQLite kinds.
    static let files: [StoreKind] = [.inMemory, .file]

    /// One kind per backend, for suites whose many cases would only repeat SQLite's file as its
    /// in-memory database.
    static var backends: [StoreKind] { PostgresTestServer.skipped ? [.inMemory] : [.inMemory, .postgres] }

    func make(_ configure: (inout EventStore.Configuration) -> Void = { _ in }) async throws -> (
        EventStore, TemporaryDirectory
    ) {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configure(&configuration)
        let directory = try TemporaryDirectory()
        switch self {
        case .inMemory:
            return (try EventStore.inMemory(configuration: configuration), directory)
        case .file:
            return (try EventStore(path: directory.path("log.sqlite"), configuration: configuration), directory)
        case .postgres:
            // Two reading connections: the tests' stores together stay well inside the server's
            // connections (a serve process of another test needs some too).
            configuration.maximumReaders = 2
            await PostgresStoreLeases.shared.acquire()
            let lease = try TemporaryDirectory { Task { await PostgresStoreLeases.shared.release() } }
            do {
                return (
                    try await EventStore.open(
                        try await PostgresTestServer.freshLog(), configuration: configuration),
                    lease
                )
            } catch {
                withExtendedLifetime(lease) {}
                throw error
            }
        }
    }
}

extension EventStore {
    /// The log at `path`, opened without writing anything to it (a source to copy from).
    static func readOnly(_ path: String) throws -> EventStore {
        var configuration = Configuration()
        configuration.readOnly = true
        return try EventStore(path: path, configuration: configuration)
    }
}

/// Deterministic events for tests: ids, times and texts derived from a seed.
struct EventFactory {
    var next: UInt64
    let base: Int64 = 1_795_000_000_000_000

    init(seed: UInt64 = 1) { next = seed << 32 }

    mutating func id() -> UUID {
        next += 1
        return UUID(uuidString: String(format: "00000000-0000-4000-8000-%012llx", next))!
    }

    mutating func message(_ text: String? = nil, by actor: Actor = Actor(id: "sam", role: .agent)) -> ProposedEvent {
        let id = id()
        return ProposedEvent(
            id: id, actor: actor, occurredAt: Timestamp(microsecondsSinceEpoch: base + Int64(next & 0xffff_ffff)),
            payload: .messagePosted(
                MessagePosted(
                    messageID: "m-\(next)",
                    text: text ?? "Message \(next): the draft is ready for review, see the link.")))
    }

    mutating func opened(_ title: String = "Launch video") -> ProposedEvent {
        ProposedEvent(
            id: id(), actor: Actor(id: "acme", role: .brand), occurredAt: Timestamp(microsecondsSinceEpoch: base),
            payload: .ticketOpened(TicketOpened(title: title, brand: "acme", creator: "kim")))
    }

    /// A ticket's worth of mixed events: opened, joins, messages, a status change, a deliverable.
    mutating func conversation(messages: Int) -> [ProposedEvent] {
        var events = [opened()]
        events.append(
            ProposedEvent(
                id: id(), actor: Actor(id: "kim", role: .creator),
                payload: .memberJoined(.init(user: "kim", role: .creator))))
        for index in 0..<messages { events.append(message("Message \(index) about cut \(index % 7), ready by Friday")) }
        events.append(
            ProposedEvent(
                id: id(), actor: Actor(id: "sam", role: .agent),
                payload: .statusChanged(.init(from: "open", to: "in_progress"))))
        events.append(
            ProposedEvent(
                id: id(), actor: Actor(id: "kim", role: .creator),
                payload: .deliverablePushed(
                    .init(
                        deliverableID: "d-\(next)", title: "Draft", url: "https://cdn.example.com/d.mp4", kind: "video")
                )))
        return events
    }
}

extension StreamID {
    static func test(_ number: Int) -> StreamID { .ticket("\(number)")! }
}

/// `body`'s result, or a failure when it takes longer than `limit`: for waits that must end
/// because something happens (a wake-up, a delivery), not because time passed.
func within<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T)
    async throws -> T
{
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw TimedOut(what: what, limit: limit)
        }
        group.cancelAll()
        return value
    }
}

/// Polls `condition` until it holds, at most `limit`: a readiness check instead of a sleep.
func waitUntil(_ what: String, within limit: Duration = .seconds(30), _ condition: @Sendable () async throws -> Bool)
    async throws
{
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what, limit: limit) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var limit: Duration
    var description: String { "\(what) did not happen within \(limit)" }
}

/// What a finished process printed.
struct ProcessOutput {
    var status: Int32
    var stdout: String
    var stderr: String
    /// The process was killed by a signal (a crash: SIGSEGV, SIGILL from a Swift trap, SIGABRT).
    var crashed = false
}

/// Runs `executable` with `arguments` to completion, capturing both output streams; in
/// `directory` when given (for tools that leave files where they run); with `environment`
/// (`nil` values remove a variable) over this process's.
func runProcess(
    _ executable: URL, _ arguments: [String], in directory: String? = nil, environment: [String: String?] = [:]
) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty {
        var merged = ProcessInfo.processInfo.environment
        for (name, value) in environment { merged[name] = value }
        process.environment = merged
    }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Read both pipes to the end before waiting, so a chatty process cannot block on a full pipe.
    let stdout = output.fileHandleForReading.readDataToEndOfFile()
    let stderr = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessOutput(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self), crashed: process.terminationReason == .uncaughtSignal)
}

/// ``runProcess(_:_:)`` for async tests: the process is waited for on a thread of its own, not on
/// one of Swift's cooperative threads — there are only as many as cores, and a test that blocks
/// them for seconds (a crash test, schemathesis, a load run) starves the in-process servers of
/// the tests running beside it.
func awaitProcess(
    _ executable: URL, _ arguments: [String], in directory: String? = nil, environment: [String: String?] = [:]
) async throws -> ProcessOutput {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(
                with: Result { try runProcess(executable, arguments, in: directory, environment: environment) })
        }
        thread.start()
    }
}

/// Runs the `sqlite3` command-line shell on `path` with `sql`, as someone tampering with the file would.
@discardableResult
func sqlite3(_ path: String, _ sql: String) throws -> String {
    let result = try runProcess(URL(fileURLWithPath: "/usr/bin/sqlite3"), [path, sql])
    guard result.status == 0 else { throw SQLiteShellError(message: result.stderr) }
    return result.stdout
}

struct SQLiteShellError: Error, CustomStringConvertible {
    var message: String
    var description: String { "sqlite3 failed: \(message)" }
}

/// The repository's `Fixtures/` directory.
let fixturesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

/// A process whose standard output is read as it comes, for a client that is stopped once it
/// has shown what the test waits for (an SSE feed read with curl). The output goes to a file,
/// read on each poll: the end of a pipe would not be seen while a process started meanwhile by
/// another test holds a copy of its write end.
final class StreamingProcess: @unchecked Sendable {
    // @unchecked: `process` is started in `init`, then waited for on a thread of its own and
    // stopped; `directory` is read only; `finished` is behind its mutex.
    private let process = Process()
    private let directory: TemporaryDirectory
    private let finished = Mutex(false)

    init(_ executable: URL, _ arguments: [String]) throws {
        directory = try TemporaryDirectory()
        let path = directory.path("output")
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        try output.close()
        Thread { [self] in
            process.waitUntilExit()
            finished.withLock { $0 = true }
        }.start()
    }

    private var hasEnded: Bool { finished.withLock { $0 } }

    private var text: String {
        (try? String(contentsOfFile: directory.path("output"), encoding: .utf8)) ?? ""
    }

    /// What the process printed once `condition` holds on it or the process has ended (it is
    /// stopped in the first case), waiting at most `limit`.
    func output(until condition: @escaping @Sendable (String) -> Bool, within limit: Duration = .seconds(60))
        async throws -> String
    {
        try await waitUntil("the process printed what was expected or ended", within: limit) { [self] in
            hasEnded || condition(text)
        }
        // SIGKILL: this test process ignores SIGTERM (the servers' service groups take it over),
        // and a child inherits an ignored signal.
        if !hasEnded { kill(process.processIdentifier, SIGKILL) }
        try await waitUntil("the process ended") { [self] in hasEnded }
        return text
    }
}
