// The "ticketlog-wal" VFS: see include/ticketlog_wal.h. Written against SQLite's documented VFS
// interface (https://sqlite.org/c3ref/vfs.html, https://sqlite.org/c3ref/io_methods.html) and the
// WAL file format (https://sqlite.org/fileformat2.html#walformat).
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define WAL_HEADER_SIZE 32
#define FRAME_HEADER_SIZE 24
// The unix VFS writes at most 128 KiB - 1 bytes a call (os_unix.c masks the length with
// 0x1ffff): 31 frames of 4 KiB pages.
#define BUFFER_CAPACITY 0x1F000

typedef struct WalFile {
    sqlite3_file base;
    /// The default VFS's file, in the memory after this struct.
    sqlite3_file *real;
    /// Whether writes are gathered (not for a read-only file, nor after a write of a shape this
    /// VFS does not know); `buffer` is allocated at the first write.
    int gathers;
    /// Bytes gathered, to be written at `start`.
    unsigned char *buffer;
    int length;
    sqlite3_int64 start;
    /// The last write was a frame header: its page is expected at `pageOffset`.
    int expectsPage;
    sqlite3_int64 pageOffset;
    /// ... and that header was a commit frame's: its page completes the commit.
    int commitPending;
    /// The page size, from the first page written (0: none yet).
    int pageSize;
    /// Where the frames written so far end (0: none written through this file yet).
    sqlite3_int64 end;
} WalFile;

static sqlite3_vfs *defaultVFS;
static sqlite3_vfs walVFS;
static sqlite3_io_methods walMethods;
/// For a default VFS whose files have no shared memory or memory-mapped methods.
static sqlite3_io_methods walMethodsVersion1;

/// How many WAL files met a write of a shape this VFS does not know (`passThrough`).
static unsigned long fallbacks;

unsigned long ticketlog_wal_vfs_fallbacks(void) {
    return __atomic_load_n(&fallbacks, __ATOMIC_RELAXED);
}

static int flush(WalFile *file) {
    if (file->length == 0) return SQLITE_OK;
    int length = file->length;
    file->length = 0;
    return file->real->pMethods->xWrite(file->real, file->buffer, length, file->start);
}

static int walClose(sqlite3_file *handle) {
    WalFile *file = (WalFile *)handle;
    // Only frames of a transaction that never committed can be left here.
    int flushed = flush(file);
    int closed = file->real->pMethods->xClose(file->real);
    free(file->buffer);
    file->buffer = NULL;
    return flushed != SQLITE_OK ? flushed : closed;
}

static int walRead(sqlite3_file *handle, void *out, int amount, sqlite3_int64 offset) {
    WalFile *file = (WalFile *)handle;
    int rc = flush(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xRead(file->real, out, amount, offset);
}

/// Appends `data` to the buffer, after writing what it holds when `data` does not follow it in
/// the file or does not fit: the file sees every write in the order they came.
static int gather(WalFile *file, const void *data, int amount, sqlite3_int64 offset) {
    if (file->length > 0 && (offset != file->start + file->length || file->length + amount > BUFFER_CAPACITY)) {
        int rc = flush(file);
        if (rc != SQLITE_OK) return rc;
    }
    if (file->length == 0) file->start = offset;
    memcpy(file->buffer + file->length, data, (size_t)amount);
    file->length += amount;
    return SQLITE_OK;
}

/// Writes `data` at once, after what is gathered.
static int writeThrough(WalFile *file, const void *data, int amount, sqlite3_int64 offset) {
    int rc = flush(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xWrite(file->real, data, amount, offset);
}

/// Any write not of the shape SQLite's WAL writer is known to use (the 32-byte WAL header at
/// the start, then for each frame its 24-byte header and its page right after) makes this file
/// write everything as it comes from then on: nothing is gathered that this VFS cannot place.
static int passThrough(WalFile *file, const void *data, int amount, sqlite3_int64 offset) {
    file->gathers = 0;
    __atomic_add_fetch(&fallbacks, 1, __ATOMIC_RELAXED);
    return writeThrough(file, data, amount, offset);
}

/// What SQLite writes to a WAL (wal.c, `walFrames`): when it starts the file again, the 32-byte
/// WAL header at offset 0; then each frame appended as two writes, its 24-byte header and its
/// page right after; a page written again within the transaction over its frame; and before a
/// commit that did so, the headers of the frames from the first such page on, again (new
/// checksums). Only appended frames are gathered, and the commit frame's page writes them
/// out: what is written over earlier frames (pages and checksums) goes to the file at once,
/// so nothing of a commit is left in the buffer when SQLite publishes it.
static int walWrite(sqlite3_file *handle, const void *data, int amount, sqlite3_int64 offset) {
    WalFile *file = (WalFile *)handle;
    if (file->gathers && file->buffer == NULL) {
        file->buffer = malloc(BUFFER_CAPACITY);
        if (file->buffer == NULL) file->gathers = 0;
    }
    if (!file->gathers) return writeThrough(file, data, amount, offset);
    if (file->expectsPage && offset == file->pageOffset) {
        // The page of the frame whose header was appended last.
        file->expectsPage = 0;
        if (amount > BUFFER_CAPACITY || (file->pageSize != 0 && amount != file->pageSize)) {
            return passThrough(file, data, amount, offset);
        }
        file->pageSize = amount;
        int rc = gather(file, data, amount, offset);
        if (rc != SQLITE_OK) return rc;
        file->end = offset + amount;
        if (file->commitPending) {
            // The commit is complete: in the file before SQLite publishes it to readers.
            file->commitPending = 0;
            return flush(file);
        }
        return SQLITE_OK;
    }
    file->expectsPage = 0;
    if (file->commitPending) {
        // A commit frame's header without its page after it: written now, to be safe.
        file->commitPending = 0;
        int rc = flush(file);
        if (rc != SQLITE_OK) return rc;
    }
    if (amount == WAL_HEADER_SIZE && offset == 0) {
        // The WAL starts again: its frames follow from offset 32.
        int rc = flush(file);
        if (rc != SQLITE_OK) return rc;
        rc = gather(file, data, amount, offset);
        file->end = WAL_HEADER_SIZE;
        return rc;
    }
    if (amount == FRAME_HEADER_SIZE && offset >= WAL_HEADER_SIZE && offset >= file->end) {
        // A frame appended.
        const unsigned char *header = data;
        int rc = gather(file, data, amount, offset);
        if (rc != SQLITE_OK) return rc;
        file->end = offset + amount;
        file->expectsPage = 1;
        file->pageOffset = offset + FRAME_HEADER_SIZE;
        // Bytes 4-7, the database's size in pages after the commit, are zero except in the
        // frame that commits a transaction.
        file->commitPending = (header[4] | header[5] | header[6] | header[7]) != 0;
        return SQLITE_OK;
    }
    if (offset >= WAL_HEADER_SIZE && offset + amount <= file->end
        && (amount == FRAME_HEADER_SIZE || (file->pageSize != 0 && amount == file->pageSize))) {
        // Over a frame written before (a page again, or its header's new checksums).
        return writeThrough(file, data, amount, offset);
    }
    return passThrough(file, data, amount, offset);
}

static int walTruncate(sqlite3_file *handle, sqlite3_int64 size) {
    WalFile *file = (WalFile *)handle;
    int rc = flush(file);
    if (rc != SQLITE_OK) return rc;
    if (file->end > size) file->end = size;
    return file->real->pMethods->xTruncate(file->real, size);
}

static int walSync(sqlite3_file *handle, int flags) {
    WalFile *file = (WalFile *)handle;
    int rc = flush(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xSync(file->real, flags);
}

static int walFileSize(sqlite3_file *handle, sqlite3_int64 *size) {
    WalFile *file = (WalFile *)handle;
    int rc = flush(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xFileSize(file->real, size);
}

static int walLock(sqlite3_file *handle, int level) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xLock(file->real, level);
}

// Neither unlocking nor file controls write out what is gathered: SQLite may ignore what they
// return, and a failed write must reach it (a commit's frames are written out by the commit
// frame's page, and before any read, sync, truncation or size of the file, whose errors it
// does not ignore).
static int walUnlock(sqlite3_file *handle, int level) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xUnlock(file->real, level);
}

static int walCheckReservedLock(sqlite3_file *handle, int *out) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xCheckReservedLock(file->real, out);
}

static int walFileControl(sqlite3_file *handle, int op, void *argument) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xFileControl(file->real, op, argument);
}

static int walSectorSize(sqlite3_file *handle) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xSectorSize(file->real);
}

static int walDeviceCharacteristics(sqlite3_file *handle) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xDeviceCharacteristics(file->real);
}

static int walShmMap(sqlite3_file *handle, int region, int size, int extend, void volatile **out) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xShmMap(file->real, region, size, extend, out);
}

static int walShmLock(sqlite3_file *handle, int offset, int count, int flags) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xShmLock(file->real, offset, count, flags);
}

static void walShmBarrier(sqlite3_file *handle) {
    WalFile *file = (WalFile *)handle;
    file->real->pMethods->xShmBarrier(file->real);
}

static int walShmUnmap(sqlite3_file *handle, int delete) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xShmUnmap(file->real, delete);
}

static int walFetch(sqlite3_file *handle, sqlite3_int64 offset, int amount, void **out) {
    WalFile *file = (WalFile *)handle;
    int rc = flush(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xFetch(file->real, offset, amount, out);
}

static int walUnfetch(sqlite3_file *handle, sqlite3_int64 offset, void *pointer) {
    WalFile *file = (WalFile *)handle;
    return file->real->pMethods->xUnfetch(file->real, offset, pointer);
}

static int walOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *handle, int flags, int *outFlags) {
    (void)vfs;
    if ((flags & SQLITE_OPEN_WAL) == 0) {
        // Not a WAL: the default VFS's file as it is (this VFS's file size covers it).
        return defaultVFS->xOpen(defaultVFS, name, handle, flags, outFlags);
    }
    WalFile *file = (WalFile *)handle;
    memset(file, 0, sizeof(WalFile));
    file->real = (sqlite3_file *)(file + 1);
    int rc = defaultVFS->xOpen(defaultVFS, name, file->real, flags, outFlags);
    if (rc != SQLITE_OK) {
        // SQLite calls xClose only when pMethods is set: the real file closes itself here if
        // its own open set its methods.
        if (file->real->pMethods != NULL) file->real->pMethods->xClose(file->real);
        file->base.pMethods = NULL;
        return rc;
    }
    file->gathers = (flags & SQLITE_OPEN_READONLY) == 0;
    file->base.pMethods = file->real->pMethods->iVersion >= 3 ? &walMethods : &walMethodsVersion1;
    return SQLITE_OK;
}

static int walDelete(sqlite3_vfs *vfs, const char *name, int syncDirectory) {
    (void)vfs;
    return defaultVFS->xDelete(defaultVFS, name, syncDirectory);
}

static int walAccess(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
    (void)vfs;
    return defaultVFS->xAccess(defaultVFS, name, flags, out);
}

static int walFullPathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    return defaultVFS->xFullPathname(defaultVFS, name, size, out);
}

static void *walDlOpen(sqlite3_vfs *vfs, const char *name) {
    (void)vfs;
    return defaultVFS->xDlOpen(defaultVFS, name);
}

static void walDlError(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    defaultVFS->xDlError(defaultVFS, size, out);
}

static void (*walDlSym(sqlite3_vfs *vfs, void *library, const char *symbol))(void) {
    (void)vfs;
    return defaultVFS->xDlSym(defaultVFS, library, symbol);
}

static void walDlClose(sqlite3_vfs *vfs, void *library) {
    (void)vfs;
    defaultVFS->xDlClose(defaultVFS, library);
}

static int walRandomness(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return defaultVFS->xRandomness(defaultVFS, size, out);
}

static int walSleep(sqlite3_vfs *vfs, int microseconds) {
    (void)vfs;
    return defaultVFS->xSleep(defaultVFS, microseconds);
}

static int walCurrentTime(sqlite3_vfs *vfs, double *out) {
    (void)vfs;
    return defaultVFS->xCurrentTime(defaultVFS, out);
}

static int walGetLastError(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return defaultVFS->xGetLastError ? defaultVFS->xGetLastError(defaultVFS, size, out) : 0;
}

static int walCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
    (void)vfs;
    return defaultVFS->xCurrentTimeInt64(defaultVFS, out);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static void registerOnce(void) {
    // Opened by a `file:` URI naming it: only where SQLite reads file names as URIs.
    if (!sqlite3_compileoption_used("USE_URI")) return;
    defaultVFS = sqlite3_vfs_find(NULL);
    if (defaultVFS == NULL || defaultVFS->iVersion < 2 || defaultVFS->xCurrentTimeInt64 == NULL) return;
    walMethods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = walClose,
        .xRead = walRead,
        .xWrite = walWrite,
        .xTruncate = walTruncate,
        .xSync = walSync,
        .xFileSize = walFileSize,
        .xLock = walLock,
        .xUnlock = walUnlock,
        .xCheckReservedLock = walCheckReservedLock,
        .xFileControl = walFileControl,
        .xSectorSize = walSectorSize,
        .xDeviceCharacteristics = walDeviceCharacteristics,
        .xShmMap = walShmMap,
        .xShmLock = walShmLock,
        .xShmBarrier = walShmBarrier,
        .xShmUnmap = walShmUnmap,
        .xFetch = walFetch,
        .xUnfetch = walUnfetch,
    };
    walMethodsVersion1 = walMethods;
    walMethodsVersion1.iVersion = 1;
    walVFS = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(WalFile) + defaultVFS->szOsFile,
        .mxPathname = defaultVFS->mxPathname,
        .zName = "ticketlog-wal",
        .xOpen = walOpen,
        .xDelete = walDelete,
        .xAccess = walAccess,
        .xFullPathname = walFullPathname,
        .xDlOpen = walDlOpen,
        .xDlError = walDlError,
        .xDlSym = walDlSym,
        .xDlClose = walDlClose,
        .xRandomness = walRandomness,
        .xSleep = walSleep,
        .xCurrentTime = walCurrentTime,
        .xGetLastError = walGetLastError,
        .xCurrentTimeInt64 = walCurrentTimeInt64,
    };
    registered = sqlite3_vfs_register(&walVFS, 0);
}

int ticketlog_wal_vfs_register(void) {
    pthread_once(&once, registerOnce);
    return registered;
}
