/*
 * The C baselines of `make bench` (issue 6): the same events, pre-encoded (canonical JSON),
 * inserted through the SQLite C API the way the design brief measured them.
 *
 *   baseline CORPUS DB briefed   1000 per transaction, WAL, NORMAL, UNIQUE(stream TEXT, version)
 *   baseline CORPUS DB limit     the same without any secondary index (the ceiling of this row)
 *   baseline CORPUS DB single N  one commit per event, WAL, FULL, first N events (briefed schema)
 *   baseline SOURCE DB exact     the limit of the engine's own schema (issue 14): every table,
 *                                index and trigger of the engine's log SOURCE, and every row of
 *                                it, written again through the C API (1000 rows per transaction,
 *                                WAL, NORMAL, the engine's page cache) from rows read beforehand;
 *                                the rate is SOURCE's events per second of writing. Each table
 *                                is written whole before the next, in its stored order: a bulk
 *                                load, which no log's append can do (its rows come in commits).
 *   baseline SOURCE DB exact-commits
 *                                the same rows in the engine's commits: 1000 events per
 *                                transaction, each transaction writing every table's rows of
 *                                those events (a table's rows ordered by the event they belong
 *                                to: `position`, `joined_position`, a Merkle node's last leaf,
 *                                else rowid — and spread over the transactions in that order),
 *                                table by table within the transaction. The limit of the
 *                                schema for an append that commits every 1000 events.
 *
 * CORPUS has one event per line: stream \t version \t type \t json. Prints one line of
 * key=value pairs: events, seconds, rate, first10 and last10 (rates of the first and last
 * tenth), bytes (events table + its indexes, from dbstat, or the file size).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { char *stream; long version; char *type; char *json; size_t json_len; } Event;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "baseline: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static Event *load(const char *path, size_t *count) {
    FILE *file = fopen(path, "r");
    if (!file) { perror(path); exit(1); }
    size_t capacity = 1 << 16, n = 0;
    Event *events = malloc(capacity * sizeof(Event));
    char *line = NULL;
    size_t size = 0;
    ssize_t length;
    while ((length = getline(&line, &size, file)) > 0) {
        if (line[length - 1] == '\n') line[--length] = 0;
        char *stream = line, *version = strchr(stream, '\t');
        if (!version) continue;
        *version++ = 0;
        char *type = strchr(version, '\t');
        if (!type) continue;
        *type++ = 0;
        char *json = strchr(type, '\t');
        if (!json) continue;
        *json++ = 0;
        if (n == capacity) events = realloc(events, (capacity *= 2) * sizeof(Event));
        events[n].stream = strdup(stream);
        events[n].version = atol(version);
        events[n].type = strdup(type);
        events[n].json_len = (size_t)(line + length - json);
        events[n].json = malloc(events[n].json_len);
        memcpy(events[n].json, json, events[n].json_len);
        n++;
    }
    free(line);
    fclose(file);
    *count = n;
    return events;
}

typedef struct { char *name; int columns; size_t count; sqlite3_value ***rows; int virtual_table; int rowid; } Table;

/* The order of a table's rows by the event each belongs to, for `exact-commits`: a column
 * holding the event's position, a Merkle node's last leaf, or the order rows were made in. */
static const char *commit_order(sqlite3 *source, const Table *table) {
    if (strcmp(table->name, "merkle_nodes") == 0) return " ORDER BY (idx + 1) << level";
    static const char *columns[] = {"position", "joined_position", "tile", "segid"};
    for (int c = 0; c < 4; c++) {
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('%s') WHERE name = '%s'", table->name, columns[c]);
        sqlite3_stmt *statement;
        check(sqlite3_prepare_v2(source, sql, -1, &statement, 0), source, "table info");
        int found = sqlite3_step(statement) == SQLITE_ROW;
        sqlite3_finalize(statement);
        if (found) {
            static char clause[64];
            snprintf(clause, sizeof clause, " ORDER BY \"%s\"", columns[c]);
            return clause;
        }
    }
    return table->rowid ? " ORDER BY rowid" : "";
}

/* Inserts rows [from, to) of `table` with its prepared `insert`. */
static void insert_rows(sqlite3 *db, sqlite3_stmt *insert, const Table *table, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        for (int c = 0; c < table->columns; c++) sqlite3_bind_value(insert, c + 1, table->rows[i][c]);
        check(sqlite3_step(insert), db, "insert");
        sqlite3_reset(insert);
    }
}

/* Whether the target already has a table of this name (an FTS5 table's shadow tables are made
 * with it). */
static int has_table(sqlite3 *db, const char *name) {
    sqlite3_stmt *statement;
    check(sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", -1, &statement, 0),
        db, "lookup");
    sqlite3_bind_text(statement, 1, name, -1, SQLITE_STATIC);
    int found = sqlite3_step(statement) == SQLITE_ROW;
    sqlite3_finalize(statement);
    return found;
}

/* The engine's rows written again, table by table, as fast as the C API can: see the header. */
static int exact(const char *source_path, const char *target_path, int in_commits) {
    sqlite3 *source, *db;
    check(sqlite3_open_v2(source_path, &source, SQLITE_OPEN_READONLY, 0), source, "open source");
    remove(target_path);
    check(sqlite3_open(target_path, &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
        " PRAGMA temp_store=MEMORY", 0, 0, 0), db, "pragmas");
    /* The schema: tables first, then indexes and triggers. A virtual table (the FTS5 search
     * index) is created as such; its rows are its shadow tables', which are copied as they are
     * stored (replacing the ones its creation wrote), not inserted through it. */
    sqlite3_stmt *schema;
    const char *kinds[] = {"table", "index", "trigger"};
    Table tables[64];
    int table_count = 0;
    for (int k = 0; k < 3; k++) {
        check(sqlite3_prepare_v2(source, "SELECT name, sql FROM sqlite_schema WHERE type = ? AND sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite_%' ORDER BY rowid", -1, &schema, 0), source, "schema");
        sqlite3_bind_text(schema, 1, kinds[k], -1, SQLITE_STATIC);
        while (sqlite3_step(schema) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(schema, 0);
            const char *sql = (const char *)sqlite3_column_text(schema, 1);
            if (k != 0 || !has_table(db, name)) check(sqlite3_exec(db, sql, 0, 0, 0), db, "create");
            if (k == 0 && table_count < 64) {
                tables[table_count].name = strdup(name);
                tables[table_count].rowid = strstr(sql, "WITHOUT ROWID") == 0;
                tables[table_count++].virtual_table = strncmp(sql, "CREATE VIRTUAL TABLE", 20) == 0;
            }
        }
        sqlite3_finalize(schema);
    }
    /* Every row, read before the clock starts. */
    long long events = 0;
    for (int t = 0; t < table_count; t++) {
        char sql[512];
        tables[t].count = 0;
        tables[t].columns = 0;
        if (tables[t].virtual_table) continue;
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"%s", tables[t].name,
            in_commits ? commit_order(source, &tables[t]) : "");
        sqlite3_stmt *rows;
        check(sqlite3_prepare_v2(source, sql, -1, &rows, 0), source, "select");
        tables[t].columns = sqlite3_column_count(rows);
        size_t capacity = 1024;
        tables[t].rows = malloc(capacity * sizeof(sqlite3_value **));
        tables[t].count = 0;
        while (sqlite3_step(rows) == SQLITE_ROW) {
            if (tables[t].count == capacity) tables[t].rows = realloc(tables[t].rows, (capacity *= 2) * sizeof(sqlite3_value **));
            sqlite3_value **row = malloc(tables[t].columns * sizeof(sqlite3_value *));
            for (int c = 0; c < tables[t].columns; c++) row[c] = sqlite3_value_dup(sqlite3_column_value(rows, c));
            tables[t].rows[tables[t].count++] = row;
        }
        sqlite3_finalize(rows);
        if (strcmp(tables[t].name, "events") == 0) events = (long long)tables[t].count;
    }
    sqlite3_stmt *inserts[64] = {0};
    for (int t = 0; t < table_count; t++) {
        if (tables[t].virtual_table || tables[t].count == 0) continue;
        char sql[4096];
        int length = snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO \"%s\" VALUES (", tables[t].name);
        for (int c = 0; c < tables[t].columns; c++) length += snprintf(sql + length, sizeof sql - length, c ? ", ?" : "?");
        snprintf(sql + length, sizeof sql - length, ")");
        check(sqlite3_prepare_v2(db, sql, -1, &inserts[t], 0), db, "prepare insert");
    }
    double start = now();
    if (in_commits) {
        /* Transaction k holds the k-th thousand events and each table's share of rows at the
         * same place in its order. */
        size_t commits = ((size_t)events + 999) / 1000;
        for (size_t k = 0; k < commits; k++) {
            check(sqlite3_exec(db, "BEGIN", 0, 0, 0), db, "begin");
            for (int t = 0; t < table_count; t++) {
                if (!inserts[t]) continue;
                insert_rows(db, inserts[t], &tables[t], tables[t].count * k / commits,
                    tables[t].count * (k + 1) / commits);
            }
            check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
        }
    } else {
        for (int t = 0; t < table_count; t++) {
            if (!inserts[t]) continue;
            for (size_t i = 0; i < tables[t].count; i += 1000) {
                size_t end = i + 1000 < tables[t].count ? i + 1000 : tables[t].count;
                check(sqlite3_exec(db, "BEGIN", 0, 0, 0), db, "begin");
                insert_rows(db, inserts[t], &tables[t], i, end);
                check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
            }
        }
    }
    double seconds = now() - start;
    for (int t = 0; t < table_count; t++) sqlite3_finalize(inserts[t]);
    check(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", 0, 0, 0), db, "checkpoint");
    sqlite3_close(db);
    sqlite3_close(source);
    printf("events=%lld seconds=%.3f rate=%.0f\n", events, seconds, events / seconds);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[3], "exact") == 0) return exact(argv[1], argv[2], 0);
    if (argc >= 4 && strcmp(argv[3], "exact-commits") == 0) return exact(argv[1], argv[2], 1);
    if (argc < 4) {
        fprintf(stderr, "usage: baseline CORPUS DB briefed|limit|single [N]  or  baseline SOURCE DB exact|exact-commits\n");
        return 2;
    }
    const char *mode = argv[3];
    int single = strcmp(mode, "single") == 0, indexed = strcmp(mode, "limit") != 0;
    size_t count;
    Event *events = load(argv[1], &count);
    if (single && argc > 4 && (size_t)atol(argv[4]) < count) count = (size_t)atol(argv[4]);

    sqlite3 *db;
    remove(argv[2]);
    check(sqlite3_open(argv[2], &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL", 0, 0, 0), db, "wal");
    check(sqlite3_exec(db, single ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", 0, 0, 0), db, "sync");
    check(sqlite3_exec(db, indexed
        ? "CREATE TABLE events(position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,"
          " type TEXT NOT NULL, payload BLOB NOT NULL, UNIQUE(stream, version))"
        : "CREATE TABLE events(position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,"
          " type TEXT NOT NULL, payload BLOB NOT NULL)", 0, 0, 0), db, "schema");
    sqlite3_stmt *insert;
    check(sqlite3_prepare_v2(db, "INSERT INTO events(position, stream, version, type, payload) VALUES (?, ?, ?, ?, ?)",
        -1, &insert, 0), db, "prepare");

    size_t batch = single ? 1 : 1000, tenth = count / 10 ? count / 10 : 1;
    double start = now(), first10 = 0, last10_start = 0;
    for (size_t i = 0; i < count; i++) {
        if (i % batch == 0) check(sqlite3_exec(db, "BEGIN", 0, 0, 0), db, "begin");
        if (i == count - tenth) last10_start = now();
        sqlite3_bind_int64(insert, 1, (sqlite3_int64)(i + 1));
        sqlite3_bind_text(insert, 2, events[i].stream, -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 3, events[i].version);
        sqlite3_bind_text(insert, 4, events[i].type, -1, SQLITE_STATIC);
        sqlite3_bind_blob(insert, 5, events[i].json, (int)events[i].json_len, SQLITE_STATIC);
        check(sqlite3_step(insert), db, "insert");
        sqlite3_reset(insert);
        if (i % batch == batch - 1 || i == count - 1) check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
        if (i + 1 == tenth) first10 = tenth / (now() - start);
    }
    double seconds = now() - start;
    double last10 = tenth / (now() - last10_start);
    sqlite3_finalize(insert);
    check(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", 0, 0, 0), db, "checkpoint");

    long long bytes = -1;
    sqlite3_stmt *stat;
    if (sqlite3_prepare_v2(db, "SELECT sum(pgsize) FROM dbstat WHERE name = 'events' OR name LIKE 'sqlite_autoindex_events%'",
            -1, &stat, 0) == SQLITE_OK) {
        if (sqlite3_step(stat) == SQLITE_ROW) bytes = sqlite3_column_int64(stat, 0);
        sqlite3_finalize(stat);
    }
    sqlite3_close(db);
    printf("events=%zu seconds=%.3f rate=%.0f first10=%.0f last10=%.0f bytes=%lld\n",
        count, seconds, count / seconds, first10, last10, bytes);
    return 0;
}
