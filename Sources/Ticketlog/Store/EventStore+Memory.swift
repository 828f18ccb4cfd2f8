import GRDBSQLite

extension EventStore {
    /// The bytes SQLite holds in this process now, for every connection of every store: page
    /// caches, prepared statements, schemas. The part of a process's memory that
    /// ``Configuration/writerCacheBytes`` and ``Configuration/readerCacheBytes`` bound, so a
    /// server's growth can be told apart from SQLite's. `0` when the system SQLite was built
    /// without memory statistics (`SQLITE_DEFAULT_MEMSTATUS=0`).
    public static var sqliteMemoryInUse: Int64 { sqlite3_memory_used() }
}
