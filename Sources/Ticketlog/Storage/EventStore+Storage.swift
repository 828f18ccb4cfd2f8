import Foundation
import GRDB

extension EventStore {
    /// Runs `body` on one read snapshot of the file, synchronously, through the storage boundary
    /// (a copy to another backend reads its source here).
    package func withReadSession<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try writer.read { db in try body(SQLiteSession(db)) }
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
