#ifndef TICKETLOG_WAL_H
#define TICKETLOG_WAL_H

/// Registers (once; later calls only return the result of the first) the SQLite VFS named
/// "ticketlog-wal": the default VFS with the writes to WAL files gathered. SQLite writes each
/// WAL frame as two `pwrite`s (its 24-byte header, then the page); this VFS copies the frames a
/// transaction appends into a buffer of up to 31 frames and writes it with one `pwrite` when the
/// commit frame's page arrives (or the buffer is full, or the file is synced, read, truncated,
/// sized or closed). What SQLite writes over earlier frames goes to the file at once. A write
/// that completes a commit returns only once the commit is in the file, as before, so nothing a
/// reader or a crash can see changes.
/// Every other file, and every other call, goes to the default VFS as it is.
///
/// Returns SQLITE_OK (0) or an SQLite error code.
int ticketlog_wal_vfs_register(void);

/// How many WAL files, since the process started, met a write of a shape the VFS does not know
/// and wrote everything as it came from then on (for tests: none should).
unsigned long ticketlog_wal_vfs_fallbacks(void);

#endif
