#ifndef TICKETLOG_SQLITE_MEMORY_H
#define TICKETLOG_SQLITE_MEMORY_H

/// Gives SQLite, once per process and only while SQLite is not initialized yet, an allocator
/// that counts the bytes it holds with one relaxed atomic add per call, and turns SQLite's own
/// memory statistics off (`SQLITE_CONFIG_MEMSTATUS`): with them on, every `sqlite3_malloc` and
/// `sqlite3_free` takes a process-wide mutex to keep them. The allocations themselves are
/// `malloc`'s, with the size in the eight bytes before each, as SQLite's default allocator does.
///
/// Returns 1 when the allocator is SQLite's (installed by this call or an earlier one), 0 when
/// SQLite was initialized before (its own allocator and statistics stay; nothing changes).
int ticketlog_sqlite_memory_install(void);

/// The bytes SQLite holds through the allocator above; -1 when it is not installed.
long long ticketlog_sqlite_memory_used(void);

#endif
