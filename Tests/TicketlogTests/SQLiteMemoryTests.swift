import CSQLiteWAL
import GRDB
import GRDBSQLite
import Testing

@testable import Ticketlog

/// SQLite's allocations go through the counting allocator of `Sources/CSQLiteWAL`
/// (`ticketlog_sqlite_memory.c`), installed before the process's first connection: every
/// connection the stores (and these tests) open is configured by
/// `EventStore.databaseConfiguration()`, which installs it. SQLite's own statistics are off, so
/// no allocation takes their process-wide mutex.
@Suite(.timeLimit(.minutes(1))) struct SQLiteMemoryTests {
    @Test func sqlitesAllocationsAreCountedWithoutItsStatistics() throws {
        _ = try EventStore.inMemory()
        #expect(ticketlog_sqlite_memory_install() == 1, "SQLite was initialized before the first store opened")
        #expect(sqlite3_memory_used() == 0, "SQLite's own statistics are off")

        // Other tests allocate meanwhile: a block far larger than what they move in an instant.
        let large: Int32 = 256 << 20
        let slack: Int64 = 32 << 20
        #expect(abs(EventStore.sqliteMemoryInUse - ticketlog_sqlite_memory_used()) < slack)
        let before = EventStore.sqliteMemoryInUse
        let block = try #require(sqlite3_malloc(large))
        #expect(sqlite3_msize(block) == UInt64(large))
        let allocated = EventStore.sqliteMemoryInUse - before
        #expect(abs(allocated - Int64(large)) < slack, "\(allocated)")

        // Sizes are kept rounded up to eight bytes, as SQLite's own allocator keeps them.
        let grown = try #require(sqlite3_realloc(block, large + 13))
        #expect(sqlite3_msize(grown) == UInt64(large) + 16)
        #expect(abs(EventStore.sqliteMemoryInUse - before - Int64(large) - 16) < slack)

        sqlite3_free(grown)
        #expect(abs(EventStore.sqliteMemoryInUse - before) < slack)
    }

    /// The count holds this store's writer cache (SQLite's own figure for the connection, which
    /// does not need its statistics), whatever the tests running beside it allocate or free.
    @Test func aStoresCacheIsInTheCount() async throws {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.writerCacheBytes = 64 << 20
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
        var factory = EventFactory()
        // ~3,000 events a transaction fill the writer's cache with their pages.
        for _ in 0..<5 {
            let appends = (0..<3_000).map { index in
                StreamAppend(stream: .test(index % 100), events: [factory.message()])
            }
            for result in await store.append(appends) { _ = try result.get() }
        }
        let cacheUsed = try await store.writer.write { db -> Int64 in
            var current: Int32 = 0
            var highest: Int32 = 0
            _ = sqlite3_db_status(db.sqliteConnection, SQLITE_DBSTATUS_CACHE_USED, &current, &highest, 0)
            return Int64(current)
        }
        #expect(cacheUsed > 4 << 20, "the writer's cache holds the pages it wrote: \(cacheUsed)")
        #expect(EventStore.sqliteMemoryInUse >= cacheUsed)
    }
}
