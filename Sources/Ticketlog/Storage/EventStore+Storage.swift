import Crypto
import Foundation
import GRDB

extension EventStore {
    /// Runs `body` on one read snapshot of the file, synchronously, through the storage boundary
    /// (a copy to another backend reads its source here).
    package func withReadSession<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try writer.read { db in try body(SQLiteSession(db)) }
    }

    /// Closes the connections to a shared database and stops listening for its commits; the
    /// store must not be used afterwards. A file's connections close when the store is released
    /// (this does nothing for a file).
    public func close() async {
        await shared?.database.close()
    }

    /// The head the log records: its newest position and that event's chain hash (the genesis
    /// hash for an empty log).
    package func head() async throws -> (position: Int64, hash: [UInt8]) {
        try await readSession { session in try ChainHead.link(session) }
    }

    /// Copies the log of `source` (an SQLite file) into this log, which must hold no events:
    /// one snapshot of the file, one transaction here. The projections are left to
    /// ``catchUpProjections(progress:)`` (or the next opening).
    package func copy(
        from source: EventStore, progress: (@Sendable (_ table: String, _ rows: Int) -> Void)? = nil
    ) async throws -> LogCopy.Summary {
        try await writeSession("the copy could not be committed") { target in
            let summary = try source.withReadSession { from in
                try LogCopy.copy(from: from, to: target, progress: progress)
            }
            try self.shared?.writer?.reloadDictionaries(target)
            return summary
        }
    }

    /// Copies this log into a new SQLite file at `path` (its projections are built when the
    /// file is first opened).
    package func copy(
        toFile path: String, progress: (@Sendable (_ table: String, _ rows: Int) -> Void)? = nil
    ) async throws -> LogCopy.Summary {
        try await readSession { source in
            try EventStore.createLog(at: path) { target in
                try LogCopy.copy(from: source, to: target, progress: progress)
            }
        }
    }

    /// Creates `path` as an empty log — the log's tables, no events, no projections — and runs
    /// `body` on it in the same write transaction: the target of a copy from another backend.
    /// A store opened on the file afterwards builds its projections. When `body` throws, the
    /// file is removed again.
    ///
    /// - Throws: ``EventStoreError/Code/invalidEvent`` when something is at `path` already.
    package static func createLog<T>(at path: String, _ body: (any SQLSession) throws -> T) throws -> T {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw EventStoreError.invalid("\(path) exists: a copy writes a new file only")
        }
        do {
            let queue = try DatabaseQueue(path: path, configuration: databaseConfiguration())
            let result = try queue.write { db in
                try Schema.create(db)
                try ContentKeyring.createTable(db)
                try prepareSyncState(db)
                return try body(SQLiteSession(db))
            }
            try queue.close()
            return result
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            if let error = error as? EventStoreError { throw error }
            throw EventStoreError.storage("cannot write the log at \(path)", cause: error)
        }
    }
}

extension EventStore {
    /// Runs `body` in one process at a time among those sharing the log, for work that must
    /// not run twice at once — the Stream mirror. On PostgreSQL the process that holds a session
    /// advisory lock named after `role` runs it; when that process dies or loses its
    /// connection, the lock is freed and another process's `whileLeading` starts `body` within
    /// about a second (a process that lost its connection cancels its `body` first). A file has
    /// one writing process: `body` just runs.
    ///
    /// Returns when the calling task is cancelled (once `body` has ended), or when `body`
    /// returns or throws on its own. `body` should end promptly when cancelled, and resume from
    /// durable state (a cursor in the log): another process may take over at any point.
    public func whileLeading(_ role: String, _ body: @escaping @Sendable () async throws -> Void) async throws {
        guard let shared else { return try await body() }
        try await shared.database.whileHoldingLock(Self.lockKey(role), body)
    }

    /// The advisory lock key of `role`: the first eight bytes of SHA-256("ticketlog:" + role),
    /// so that roles never share a key with each other or with the schema lock by accident.
    static func lockKey(_ role: String) -> Int64 {
        let digest = Array(SHA256.hash(data: Array("ticketlog:\(role)".utf8)))
        return digest.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }
}
