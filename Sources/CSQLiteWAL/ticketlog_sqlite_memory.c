// SQLite's allocator, counted without a lock: see include/ticketlog_sqlite_memory.h. Written
// against SQLite's documented interface (https://sqlite.org/c3ref/mem_methods.html,
// https://sqlite.org/c3ref/c_config_covering_index_scan.html).
#include "ticketlog_sqlite_memory.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>

static _Atomic long long inUse = 0;

/// `bytes` rounded up to a multiple of eight, as the blocks are sized.
static long long rounded(int bytes) {
    return ((long long)bytes + 7) & ~7LL;
}

/// Each allocation is `malloc`'s, eight bytes longer: its size first, the caller's bytes after
/// (eight-byte aligned, as SQLite requires).
static void *memoryMalloc(int bytes) {
    if (bytes <= 0) return NULL;
    long long size = rounded(bytes);
    long long *block = malloc((size_t)size + 8);
    if (block == NULL) return NULL;
    block[0] = size;
    atomic_fetch_add_explicit(&inUse, size, memory_order_relaxed);
    return block + 1;
}

static void memoryFree(void *prior) {
    if (prior == NULL) return;
    long long *block = (long long *)prior - 1;
    atomic_fetch_sub_explicit(&inUse, block[0], memory_order_relaxed);
    free(block);
}

static void *memoryRealloc(void *prior, int bytes) {
    if (prior == NULL) return memoryMalloc(bytes);
    if (bytes <= 0) return NULL;
    long long *block = (long long *)prior - 1;
    long long old = block[0];
    long long size = rounded(bytes);
    block = realloc(block, (size_t)size + 8);
    if (block == NULL) return NULL;
    block[0] = size;
    atomic_fetch_add_explicit(&inUse, size - old, memory_order_relaxed);
    return block + 1;
}

static int memorySize(void *prior) {
    return prior == NULL ? 0 : (int)((long long *)prior)[-1];
}

static int memoryRoundup(int bytes) {
    return (int)rounded(bytes);
}

static int memoryInit(void *unused) {
    (void)unused;
    return SQLITE_OK;
}

static void memoryShutdown(void *unused) {
    (void)unused;
}

static const sqlite3_mem_methods methods = {
    .xMalloc = memoryMalloc,
    .xFree = memoryFree,
    .xRealloc = memoryRealloc,
    .xSize = memorySize,
    .xRoundup = memoryRoundup,
    .xInit = memoryInit,
    .xShutdown = memoryShutdown,
    .pAppData = NULL,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic int installed = 0;

static void installOnce(void) {
    // Both calls are refused (SQLITE_MISUSE) once SQLite is initialized, and then change nothing.
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK) return;
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    installed = 1;
}

int ticketlog_sqlite_memory_install(void) {
    pthread_once(&once, installOnce);
    return installed;
}

long long ticketlog_sqlite_memory_used(void) {
    if (!installed) return -1;
    return atomic_load_explicit(&inUse, memory_order_relaxed);
}
