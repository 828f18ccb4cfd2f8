import Ticketlog

/// The log's tables in PostgreSQL: the same tables, columns and constraints as the SQLite file
/// (ARCHITECTURE.md, "File format"), in PostgreSQL's types — `bigint` for integers, `bytea` for
/// blobs — and `meta` with one typed column per kind of value. Events, dictionaries, Merkle
/// nodes and leaf hints refuse UPDATE, DELETE and TRUNCATE through triggers, as in SQLite.
///
/// One difference: the events' stream, type and actor columns are not declared as foreign keys.
/// PostgreSQL checks a foreign key with a query per row (a third of an append's server time at
/// commit, measured); the keys are made only by the writer, under the head lock, in the
/// transaction of the events that use them; and every reader of events — `verify` among them —
/// refuses an event whose key has no row (``EventStoreError/Code/corrupt``). It also lets a
/// session merge the inserts a transaction sends across tables (``StatementBatch``).
enum PostgresSchema {
    /// One statement each: the extended protocol takes one at a time.
    static let statements: [String] =
        [
            "CREATE TABLE meta (key text PRIMARY KEY, integer bigint, text text, blob bytea)",
            "CREATE TABLE dictionaries (id bigint PRIMARY KEY, created_at bigint NOT NULL, content bytea NOT NULL)",
            "CREATE TABLE streams (key bigint PRIMARY KEY, name text NOT NULL UNIQUE, version bigint NOT NULL)",
            "CREATE TABLE actors (key bigint PRIMARY KEY, id text NOT NULL, role text NOT NULL, UNIQUE (id, role))",
            "CREATE TABLE event_types (key bigint PRIMARY KEY, name text NOT NULL UNIQUE)",
            """
            CREATE TABLE events (
                position bigint PRIMARY KEY,
                stream bigint NOT NULL,
                version bigint NOT NULL,
                id bytea NOT NULL,
                type bigint NOT NULL,
                actor bigint NOT NULL,
                occurred_at bigint NOT NULL,
                recorded_at bigint NOT NULL,
                codec bigint NOT NULL,
                body bytea NOT NULL,
                chain_check bytea NOT NULL,
                UNIQUE (stream, version)
            )
            """,
            "CREATE UNIQUE INDEX events_by_id ON events(id)",
            "CREATE INDEX events_by_actor ON events(actor, position)",
            "CREATE TABLE merkle_nodes (level bigint NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, PRIMARY KEY (level, idx))",
            "CREATE TABLE merkle_leaf_hints (tile bigint PRIMARY KEY, hints bytea NOT NULL)",
            """
            CREATE TABLE checkpoints (
                size bigint NOT NULL, key_id bigint NOT NULL, signed_at bigint NOT NULL, note text NOT NULL,
                verifier text NOT NULL, PRIMARY KEY (size, key_id)
            )
            """,
            """
            CREATE TABLE content_keys (
                id text PRIMARY KEY, subject text NOT NULL, stream text NOT NULL, period text NOT NULL, wrapped bytea,
                created_at bigint NOT NULL, erased_at bigint
            )
            """,
            "CREATE INDEX content_keys_by_subject ON content_keys(subject)",
            "CREATE INDEX content_keys_by_stream ON content_keys(stream)",
            "CREATE TABLE sync_cursors (destination text PRIMARY KEY, position bigint NOT NULL)",
            "CREATE TABLE sync_marks (destination text NOT NULL, key text NOT NULL, value bigint NOT NULL, PRIMARY KEY (destination, key))",
            """
            CREATE TABLE sync_dead_letters (
                destination text NOT NULL, position bigint NOT NULL, stream text NOT NULL, request text NOT NULL,
                reason text NOT NULL, at bigint NOT NULL, PRIMARY KEY (destination, position)
            )
            """,
            """
            CREATE FUNCTION ticketlog_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ticketlog % are immutable: % refused', TG_TABLE_NAME, TG_OP;
            END
            $$
            """,
        ] + immutableTables.flatMap(triggers)

    /// The tables whose rows are never changed or removed once written.
    static let immutableTables = ["events", "dictionaries", "merkle_nodes", "merkle_leaf_hints"]

    /// The UPDATE, DELETE and TRUNCATE refusals of one table; the events' are named as in SQLite
    /// (`Schema.immutabilityTriggers`), which `verify` looks for.
    static func triggers(_ table: String) -> [String] {
        [
            "CREATE TRIGGER \(table)_are_immutable_update BEFORE UPDATE ON \(table) FOR EACH ROW EXECUTE FUNCTION ticketlog_refuse_change()",
            "CREATE TRIGGER \(table)_are_immutable_delete BEFORE DELETE ON \(table) FOR EACH ROW EXECUTE FUNCTION ticketlog_refuse_change()",
            "CREATE TRIGGER \(table)_are_immutable_truncate BEFORE TRUNCATE ON \(table) FOR EACH STATEMENT EXECUTE FUNCTION ticketlog_refuse_change()",
        ]
    }

    /// Creates the log's tables and meta rows in an empty database.
    static func create(_ session: any SQLSession) throws {
        for statement in statements { try session.execute(statement) }
        let meta = LogTables(session)
        for (key, value) in Schema.initialMeta { try meta.setMeta(key, value) }
    }
}
