import Foundation
import GRDB

/// The file format: tables, indexes, triggers and the meta rows that identify a ticketlog file.
///
/// Format 2 (ARCHITECTURE.md, "File format"):
/// - `meta(key, value)`: `format` = `ticketlog.events`, `format_version` = 2, and the chain head
///   (`head_position`, `head_hash`) as of the last commit: the full hash of the newest link.
/// - `dictionaries(id, created_at, content)`: LZ4 dictionaries; events name theirs in `codec`.
/// - `streams(key, name, version)`, `actors(key, id, role)`, `event_types(key, name)`: the
///   small tables event rows refer to by integer.
/// - `events(position, stream, version, id, type, actor, occurred_at, recorded_at, codec, body,
///   chain_check)`: `position` the rowid, the body without the members the columns hold
///   (``StoredBody``), `chain_check` the first 8 bytes of the event's chain hash;
///   `UNIQUE(stream, version)`, unique index on `id`, index on `(actor, position)` for the audit
///   trail, and triggers refusing UPDATE and DELETE.
/// - `merkle_nodes(level, idx, hash)` and `meta.tree_edge`: the RFC 6962 tree over the events
///   (``MerkleNodes``); `checkpoints(size, key_id, signed_at, note)`: signed checkpoints.
///
/// Format 1 stored the whole canonical body and the full hash per row; ``LogMigration`` turns
/// it into format 2.
package enum Schema {
    package static let format = "ticketlog.events"
    package static let formatVersion = 2

    /// Creates the schema in an empty file, or checks that a non-empty file is a log this build
    /// can read.
    static func prepare(_ db: Database, path: String) throws {
        if try check(db, path: path) == .empty {
            try create(db)
        } else {
            try MerkleNodes.createTables(db)
        }
    }

    package enum Content {
        case empty
        case log
    }

    /// Whether the file is empty or a log this build reads; throws for anything else. Reads only.
    @discardableResult
    static func check(_ db: Database, path: String) throws -> Content {
        try check(SQLiteSession(db), name: path, kind: "an SQLite database")
    }

    /// Whether the database a session reads is empty or a log this build reads; throws a
    /// one-line ``EventStoreError/Code/unknownFormat`` naming what was found for anything else.
    /// Reads only. `name` names the database in messages; `kind` says what it is when it is not
    /// a log ("an SQLite database", "a PostgreSQL database").
    @discardableResult
    package static func check(_ session: any SQLSession, name path: String, kind: String) throws -> Content {
        let tables = try LogTables(session).tableNames().filter { !$0.hasPrefix("sqlite_") }.sorted()
        if tables.isEmpty { return .empty }
        guard tables.contains("meta") else {
            throw EventStoreError(
                code: .unknownFormat,
                message:
                    "\(path) is \(kind) but not a ticketlog log (it has tables \(tables.prefix(12).joined(separator: ", "))\(tables.count > 12 ? ", …" : "") and no meta table)"
            )
        }
        let meta = LogTables(session)
        let format = try meta.meta("format").text
        guard format == Self.format else {
            throw EventStoreError(
                code: .unknownFormat,
                message:
                    "\(path) is not a ticketlog log (its meta table names format \(format.map { "'\($0)'" } ?? "none"))"
            )
        }
        let stored = try meta.meta("format_version")
        guard let version = stored.integer ?? stored.text.flatMap({ Int64($0) }) else {
            throw EventStoreError(code: .unknownFormat, message: "\(path) has no format version in its meta table")
        }
        if version == 1 {
            throw EventStoreError(
                code: .unknownFormat,
                message:
                    "\(path) uses ticketlog format 1; this build reads format \(formatVersion). Upgrade the file once with `ticketlog migrate --database \(path)` (it keeps every event, id and position)"
            )
        }
        guard version == formatVersion else {
            let newer = version > formatVersion
            throw EventStoreError(
                code: .unknownFormat,
                message: "\(path) uses ticketlog format \(version); this build reads format \(formatVersion)"
                    + (newer ? " (upgrade ticketlog to open it)" : ""))
        }
        return .log
    }

    static func create(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value ANY
                ) WITHOUT ROWID, STRICT;
                CREATE TABLE dictionaries (
                    id INTEGER PRIMARY KEY,
                    created_at INTEGER NOT NULL,
                    content BLOB NOT NULL
                ) STRICT;
                CREATE TABLE streams (
                    key INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    version INTEGER NOT NULL
                ) STRICT;
                CREATE TRIGGER dictionaries_are_immutable_update BEFORE UPDATE ON dictionaries
                BEGIN SELECT RAISE(ABORT, 'ticketlog dictionaries are immutable: UPDATE refused'); END;
                CREATE TRIGGER dictionaries_are_immutable_delete BEFORE DELETE ON dictionaries
                BEGIN SELECT RAISE(ABORT, 'ticketlog dictionaries are immutable: DELETE refused'); END;
                """)
        try createEventTables(db)
        try MerkleNodes.createTables(db)
        try db.execute(
            sql:
                "INSERT INTO meta(key, value) VALUES ('format', ?), ('format_version', ?), ('head_position', 0), ('head_hash', ?), ('tree_edge', ?)",
            arguments: [format, formatVersion, Data(HashChain.genesis), Data(MerkleEdge().bytes)])
    }

    /// The meta rows of a new, empty log (either backend).
    package static var initialMeta: [(key: String, value: SQLValue)] {
        [
            ("format", .text(format)), ("format_version", .integer(Int64(formatVersion))),
            ("head_position", .integer(0)), ("head_hash", .blob(HashChain.genesis)),
            ("tree_edge", .blob(Array(MerkleEdge().bytes))),
        ]
    }

    /// The format-2 event tables, indexes and triggers (also what ``LogMigration`` builds).
    static func createEventTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE actors (
                    key INTEGER PRIMARY KEY,
                    id TEXT NOT NULL,
                    role TEXT NOT NULL,
                    UNIQUE (id, role)
                ) STRICT;
                CREATE TABLE event_types (
                    key INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE
                ) STRICT;
                CREATE TABLE events (
                    position INTEGER PRIMARY KEY,
                    stream INTEGER NOT NULL REFERENCES streams(key),
                    version INTEGER NOT NULL,
                    id BLOB NOT NULL,
                    type INTEGER NOT NULL REFERENCES event_types(key),
                    actor INTEGER NOT NULL REFERENCES actors(key),
                    occurred_at INTEGER NOT NULL,
                    recorded_at INTEGER NOT NULL,
                    codec INTEGER NOT NULL,
                    body BLOB NOT NULL,
                    chain_check BLOB NOT NULL,
                    UNIQUE (stream, version)
                ) STRICT;
                CREATE UNIQUE INDEX events_by_id ON events(id);
                CREATE INDEX events_by_actor ON events(actor, position);
                CREATE TRIGGER events_are_immutable_update BEFORE UPDATE ON events
                BEGIN SELECT RAISE(ABORT, 'ticketlog events are immutable: UPDATE refused'); END;
                CREATE TRIGGER events_are_immutable_delete BEFORE DELETE ON events
                BEGIN SELECT RAISE(ABORT, 'ticketlog events are immutable: DELETE refused'); END;
                """)
    }

    /// How many bytes of each event's chain hash its row keeps (`chain_check`).
    package static let chainCheckSize = 8

    /// The names of the triggers that make events immutable; `verify` warns when one is gone.
    package static let immutabilityTriggers = ["events_are_immutable_update", "events_are_immutable_delete"]
}
