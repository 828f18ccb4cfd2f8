import CSQLiteWAL
import GRDBSQLite

extension EventStore {
    /// The bytes SQLite holds in this process now, for every connection of every store: page
    /// caches, prepared statements, schemas. The part of a process's memory that
    /// ``Configuration/writerCacheBytes`` and ``Configuration/readerCacheBytes`` bound, so a
    /// server's growth can be told apart from SQLite's.
    ///
    /// Opening the process's first store (before anything else in it initialized SQLite) gives
    /// SQLite an allocator that counts these bytes with an atomic add, and turns SQLite's own
    /// memory statistics off: with them on, every allocation SQLite makes takes a process-wide
    /// mutex (~4% of an append's writer). Then `sqlite3_memory_used()` reads 0 and
    /// `sqlite3_soft_heap_limit64` has no effect in the process; this property is the count.
    /// Where SQLite was initialized first, it is SQLite's own statistics (`0` when the system
    /// SQLite was built without them, `SQLITE_DEFAULT_MEMSTATUS=0`).
    public static var sqliteMemoryInUse: Int64 {
        let counted = ticketlog_sqlite_memory_used()
        return counted >= 0 ? counted : sqlite3_memory_used()
    }
}
