import Foundation

/// The log's own tables — `meta`, `dictionaries`, the vocabulary tables and `events` — read
/// through a session of either backend, as the format defines them (ARCHITECTURE.md, "File
/// format"): what `verify` and `copy` are written with, once.
package struct LogTables {
    package let session: any SQLSession

    package init(_ session: any SQLSession) {
        self.session = session
    }

    /// The event columns in the order ``StoredEventRow/init(_:)`` reads them.
    package static let eventColumns =
        "position, stream, version, id, type, actor, occurred_at, recorded_at, codec, body, chain_check"

    // MARK: meta

    /// A meta value; `.null` when the key is not there. SQLite keeps one `value` column of any
    /// type; PostgreSQL, typed, keeps one column per kind and the others NULL.
    package func meta(_ key: String) throws -> SQLValue {
        try meta([key])[key] ?? .null
    }

    /// Several meta values in one statement, by key (a key without a row is missing).
    package func meta(_ keys: [String]) throws -> [String: SQLValue] {
        var values: [String: SQLValue] = [:]
        if session.dialect == .sqlite {
            // The table holds a few rows: all of them are read rather than an `IN` list, for
            // which SQLite builds a temporary b-tree (a pager and its page cache) at every run:
            // the writer reads the head here once per transaction.
            for row in try session.rows("SELECT key, value FROM meta", []) {
                guard let key = row[0].text, keys.contains(key) else { continue }
                values[key] = row[1]
            }
            return values
        }
        for row in try session.rows(
            "SELECT key, integer, text, blob FROM meta WHERE key IN", in: keys.map(SQLValue.text))
        {
            guard let key = row[0].text else { continue }
            values[key] = row.values.dropFirst().first { !$0.isNull } ?? .null
        }
        return values
    }

    /// Writes several meta values (insert or replace) in one statement, without waiting for it
    /// (``SQLSession/send(_:_:)``).
    package func setMeta(_ values: [(key: String, value: SQLValue)]) throws {
        guard !values.isEmpty else { return }
        switch session.dialect {
        case .sqlite:
            for (key, value) in values { try setMeta(key, value) }
        case .postgres:
            try session.send(
                """
                INSERT INTO meta(key, integer, text, blob)
                VALUES \(Array(repeating: "(?, ?, ?, ?)", count: values.count).joined(separator: ", "))
                ON CONFLICT (key) DO UPDATE SET integer = excluded.integer, text = excluded.text, blob = excluded.blob
                """, values.flatMap { [.text($0.key)] + Self.typedColumns($0.value) })
        }
    }

    /// A value in PostgreSQL's `meta` columns: integer, text, blob (a real as text).
    private static func typedColumns(_ value: SQLValue) -> [SQLValue] {
        var columns: [SQLValue] = [.null, .null, .null]
        switch value {
        case .integer: columns[0] = value
        case .text: columns[1] = value
        case .blob: columns[2] = value
        case .real(let real): columns[1] = .text(String(real))
        case .null: break
        }
        return columns
    }

    /// Writes a meta value (insert or replace).
    package func setMeta(_ key: String, _ value: SQLValue) throws {
        switch session.dialect {
        case .sqlite:
            try session.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [.text(key), value])
        case .postgres:
            try session.execute(
                """
                INSERT INTO meta(key, integer, text, blob) VALUES (?, ?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET integer = excluded.integer, text = excluded.text, blob = excluded.blob
                """, [.text(key)] + Self.typedColumns(value))
        }
    }

    /// Every meta row, by key.
    package func allMeta() throws -> [String: SQLValue] {
        let rows: [SQLRow]
        switch session.dialect {
        case .sqlite: rows = try session.rows("SELECT key, value FROM meta ORDER BY key", [])
        case .postgres: rows = try session.rows("SELECT key, integer, text, blob FROM meta ORDER BY key", [])
        }
        var meta: [String: SQLValue] = [:]
        for row in rows {
            guard let key = row[0].text else { continue }
            meta[key] = row.values.dropFirst().first { !$0.isNull } ?? .null
        }
        return meta
    }

    // MARK: What events refer to

    /// The LZ4 dictionaries, by id.
    func dictionaries(compressionLevel: Int = 0) throws -> [Int64: LZ4Dictionary] {
        var dictionaries: [Int64: LZ4Dictionary] = [:]
        for row in try session.rows("SELECT id, content FROM dictionaries ORDER BY id", []) {
            guard let id = row[0].integer, let content = row[1].blob, content.count <= LZ4Dictionary.maximumSize
            else { continue }
            dictionaries[id] = LZ4Dictionary(id: id, content: content, compressionLevel: compressionLevel)
        }
        return dictionaries
    }

    /// The vocabulary tables, whole (small next to the events: one row per stream, actor, type).
    package func vocabulary() throws -> LogVocabulary {
        var vocabulary = LogVocabulary()
        try extend(&vocabulary)
        return vocabulary
    }

    /// Adds the vocabulary rows made since `vocabulary` was read: keys are made in commit order
    /// (the largest plus one, under the head), so those are the keys above the largest known.
    func extend(_ vocabulary: inout LogVocabulary) throws {
        for row in try session.rows(
            "SELECT key, name FROM streams WHERE key > ?", [.integer(vocabulary.streams.keys.max() ?? .min)])
        {
            if let key = row[0].integer, let name = row[1].text { vocabulary.streams[key] = name }
        }
        for row in try session.rows(
            "SELECT key, name FROM event_types WHERE key > ?", [.integer(vocabulary.types.keys.max() ?? .min)])
        {
            if let key = row[0].integer, let name = row[1].text { vocabulary.types[key] = name }
        }
        for row in try session.rows(
            "SELECT key, id, role FROM actors WHERE key > ?", [.integer(vocabulary.actors.keys.max() ?? .min)])
        {
            guard let key = row[0].integer, let id = row[1].text, let role = row[2].text else { continue }
            vocabulary.actors[key] = (id, role)
        }
    }

    // MARK: Events

    /// Up to `limit` event rows after `position`, in position order; `nil` for a row with a
    /// column NULL or of another type (a tampered log).
    package func events(after position: Int64, limit: Int) throws -> [StoredEventRow?] {
        try session.eventRows(
            "SELECT \(Self.eventColumns) FROM events WHERE position > ? ORDER BY position LIMIT ?",
            [.integer(position), .integer(Int64(limit))])
    }

    /// The number of events.
    package func eventCount() throws -> Int64 {
        try session.value("SELECT count(*) FROM events").integer ?? 0
    }

    /// The tables the database holds.
    package func tableNames() throws -> Set<String> {
        let sql =
            switch session.dialect {
            case .sqlite: "SELECT name FROM sqlite_master WHERE type = 'table'"
            case .postgres: "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            }
        return Set(try session.rows(sql, []).compactMap { $0[0].text })
    }

    /// The names of the triggers on the log's tables (the immutability triggers among them).
    package func triggerNames() throws -> Set<String> {
        let sql =
            switch session.dialect {
            case .sqlite: "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            case .postgres: "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            }
        return Set(try session.rows(sql, []).compactMap { $0[0].text })
    }
}

/// The small tables event rows refer to by integer, loaded whole.
package struct LogVocabulary: Sendable {
    package var streams: [Int64: String] = [:]
    package var types: [Int64: String] = [:]
    package var actors: [Int64: (id: String, role: String)] = [:]

    package init() {}

    /// The columns of an event row as the canonical JSON spells them.
    func columns(of row: StoredEventRow) throws -> EventColumns {
        guard let uuid = UUID(databaseBytes: row.id) else {
            throw EventStoreError.badEventID(bytes: row.id.count, position: row.position)
        }
        guard let stream = streams[row.stream] else {
            throw EventStoreError.missingReference("stream", row.stream, position: row.position)
        }
        guard let type = types[row.type] else {
            throw EventStoreError.missingReference("event type", row.type, position: row.position)
        }
        guard let (id, roleName) = actors[row.actor] else {
            throw EventStoreError.missingReference("actor", row.actor, position: row.position)
        }
        guard let role = Actor.Role(rawValue: roleName) else {
            throw EventStoreError.unknownRole(roleName, actor: row.actor, position: row.position)
        }
        return EventColumns(
            id: uuid, stream: stream, type: type, actor: Actor(id: id, role: role), occurredAt: row.occurredAt,
            recordedAt: row.recordedAt)
    }
}

/// One row of `events`, as stored.
package struct StoredEventRow: Sendable {
    package var position: Int64
    package var stream: Int64
    package var version: Int64
    package var id: [UInt8]
    package var type: Int64
    package var actor: Int64
    package var occurredAt: Int64
    package var recordedAt: Int64
    package var codec: Int64
    package var blob: [UInt8]
    package var check: [UInt8]

    init(
        position: Int64, stream: Int64, version: Int64, id: [UInt8], type: Int64, actor: Int64, occurredAt: Int64,
        recordedAt: Int64, codec: Int64, blob: [UInt8], check: [UInt8]
    ) {
        self.position = position
        self.stream = stream
        self.version = version
        self.id = id
        self.type = type
        self.actor = actor
        self.occurredAt = occurredAt
        self.recordedAt = recordedAt
        self.codec = codec
        self.blob = blob
        self.check = check
    }

    /// `nil` when a column is NULL or of the wrong type (possible only in a tampered log: the
    /// tables are typed and NOT NULL), read from a row of ``LogTables/eventColumns``.
    package init?(_ row: SQLRow) {
        guard row.values.count == 11, let position = row[0].integer, let stream = row[1].integer,
            let version = row[2].integer, let id = row[3].blob, let type = row[4].integer,
            let actor = row[5].integer, let occurredAt = row[6].integer, let recordedAt = row[7].integer,
            let codec = row[8].integer, let blob = row[9].blob, let check = row[10].blob
        else { return nil }
        self.init(
            position: position, stream: stream, version: version, id: id, type: type, actor: actor,
            occurredAt: occurredAt, recordedAt: recordedAt, codec: codec, blob: blob, check: check)
    }

    /// The stored body, decompressed with the row's dictionary and its sealed fields unpacked.
    func storedBody(dictionaries: [Int64: LZ4Dictionary]) throws -> [UInt8] {
        let id = BodyCodec.dictionaryID(codec)
        return try blob.withUnsafeBytes { bytes in
            try Self.storedBody(
                codec: codec, blob: bytes, dictionary: id == BodyCodec.uncompressed ? nil : dictionaries[id],
                position: position)
        }
    }

    /// The stored body of a row (``StoredBody``): decompressed with `dictionary` (the one its
    /// codec names) and its sealed fields unpacked. Both backends' readers decode through here.
    static func storedBody(codec: Int64, blob: UnsafeRawBufferPointer, dictionary: LZ4Dictionary?, position: Int64)
        throws -> [UInt8]
    {
        // Made only when thrown: every event read comes through here.
        func damaged() -> EventStoreError {
            .corrupt(
                "the event at position \(position) has a damaged packed body (its sealed fields do not unpack)",
                position: position)
        }
        if codec & BodyCodec.sealedSeparate != 0 {
            guard let parts = BodyCodec.sealedParts(blob) else { throw damaged() }
            let skeleton = try BodyCodec.decode(
                codec: BodyCodec.dictionaryID(codec), blob: parts.skeleton, dictionary: dictionary, position: position)
            guard let unpacked = SealedPacking.unpack(skeleton, sealed: parts.sealed) else { throw damaged() }
            return unpacked
        }
        let body = try BodyCodec.decode(
            codec: BodyCodec.dictionaryID(codec), blob: blob, dictionary: dictionary, position: position)
        guard codec & BodyCodec.sealedPacked != 0 else { return body }
        guard let unpacked = SealedPacking.unpack(inline: body) else { throw damaged() }
        return unpacked
    }
}
