import Foundation
import GRDB
import Synchronization

/// Where a log on SQLite keeps its full-text index (``MessageSearchIndex``): a database of its
/// own beside the log — the file `<log>-search` — written behind the appends by a connection
/// of its own, so the log's writer never tokenizes a text and the index's pages are never among
/// a commit's frames. The index is derived: it says up to which position it has indexed the log
/// (`search_state.indexed_through`), and a search first brings it up to the log's head, so a
/// search still sees every message committed before it began.
///
/// The connection opens the log itself (only read: it decodes the texts, with the log's keys)
/// and attaches the index file as `search`; its transactions are `DEFERRED`, so they take the
/// index file's write lock and never the log's. A log in memory attaches an in-memory database
/// as `search` to its one connection instead.
///
/// The index is checked against the log when the log opens: it must be of this log (the id of
/// its first event), not ahead of its head, and have seen every erasure the log recorded (the
/// version of the `erasures` stream). Otherwise — a log restored from a copy, an erasure whose
/// commit did not happen after the index forgot its texts, or the reverse after a crash — it is
/// emptied (with `secure_delete` and a `VACUUM`, so no forgotten term stays in its free pages)
/// and built again.
final class SearchIndexFile: Sendable {
    /// The file, or `nil` for a log in memory (whose one connection holds the index).
    let path: String?
    /// The connection with the log as `main` and the index as `search`.
    let connection: any DatabaseWriter
    /// Whether `connection` is the log's own writer (a log in memory).
    var sharesLogConnection: Bool { path == nil }
    /// Background indexing: whether a pass runs, whether commits came since it started, and
    /// whether the store is closing (no pass starts then).
    private let background = Mutex<(running: Bool, again: Bool, stopped: Bool)>((false, false, false))
    /// Where the index's work runs — background passes, searches' catch-ups, rebuilds: a thread
    /// apart from Swift concurrency's, since the connection blocks it.
    let queue = DispatchQueue(label: "ticketlog.search-index", qos: .utility)

    /// How many positions one indexing transaction covers.
    static let positionsPerStep: Int64 = 5_000

    /// The index file of the log at `logPath`.
    static func path(of logPath: String) -> String { logPath + "-search" }

    /// Opens (creating it when missing) the index beside the log at `logPath`.
    init(logPath: String, secureDelete: Bool) throws {
        let path = Self.path(of: logPath)
        var configuration = EventStore.databaseConfiguration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "ATTACH DATABASE ? AS search", arguments: [path])
            try db.execute(sql: "PRAGMA search.journal_mode = WAL")
            // Derived: a commit lost to a power cut is indexed again.
            try db.execute(sql: "PRAGMA search.synchronous = NORMAL")
            if secureDelete { try db.execute(sql: "PRAGMA search.secure_delete = ON") }
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // The connection never writes the log.
            try db.execute(sql: "PRAGMA main.cache_size = -2048")
        }
        self.path = path
        connection = try DatabaseQueue(path: logPath, configuration: configuration)
        queue.setSpecific(key: Self.onQueue, value: true)
    }

    /// The index of a log in memory: `search` attached to the log's own connection `queue`.
    init(inMemory queue: DatabaseQueue) throws {
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ':memory:' AS search")
        }
        path = nil
        connection = queue
        self.queue.setSpecific(key: Self.onQueue, value: true)
    }

    /// Runs `body` in a transaction holding the index's write lock (taken first, so what it
    /// reads of the index is never stale), reading the log as of its first read.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try connection.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.deferred) {
                // The index file's write lock, before anything of it is read.
                try db.execute(sql: "UPDATE search.search_state SET indexed_through = indexed_through")
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    /// Marks that commits happened; returns whether the caller is to start a pass (none runs).
    func markCommitted() -> Bool {
        background.withLock { state in
            if state.stopped { return false }
            if state.running {
                state.again = true
                return false
            }
            state.running = true
            state.again = false
            return true
        }
    }

    /// At the end of a background pass: whether to run another (commits came meanwhile).
    func passEnded() -> Bool {
        background.withLock { state in
            if state.again && !state.stopped {
                state.again = false
                return true
            }
            state.running = false
            return false
        }
    }

    /// Starts no more passes, and returns once the running one (if any) has ended — unless
    /// called from that pass's own thread.
    func stop() {
        background.withLock { $0.stopped = true }
        if DispatchQueue.getSpecific(key: Self.onQueue) == nil { queue.sync {} }
    }

    private static let onQueue = DispatchSpecificKey<Bool>()
}
