import Foundation
import GRDB

/// The direction of a stream read.
public enum ReadDirection: Sendable {
    case forwards
    case backwards
}

extension EventStore {
    /// The events of `stream` from `version` on, oldest first (forwards) or newest first
    /// (backwards). `version` `nil` means the first event (forwards) or the last (backwards).
    /// A stream that does not exist reads as empty.
    public func readStream(
        _ stream: StreamID, from version: Int64? = nil, direction: ReadDirection = .forwards, limit: Int = 1_000
    ) async throws -> [RecordedEvent] {
        let start = version ?? (direction == .forwards ? 1 : .max)
        let condition =
            switch direction {
            case .forwards: "stream = ? AND version >= ? ORDER BY version LIMIT ?"
            case .backwards: "stream = ? AND version <= ? ORDER BY version DESC LIMIT ?"
            }
        return try await readSession { session in
            guard
                let key = try session.value("SELECT key FROM streams WHERE name = ?", [.text(stream.rawValue)]).integer
            else { return [] }
            return try self.events(
                session, where: condition, [.integer(key), .integer(start), .integer(Int64(max(0, limit)))])
        }
    }

    /// Events of the whole log from `position` on (inclusive), in position order.
    public func readAll(from position: Int64 = 1, limit: Int = 1_000) async throws -> [RecordedEvent] {
        try await readSession { session in
            try self.events(
                session, where: "position >= ? ORDER BY position LIMIT ?",
                [.integer(position), .integer(Int64(max(0, limit)))])
        }
    }

    /// The event stored under `id`, wherever it is; `nil` when there is none.
    public func event(id: UUID) async throws -> RecordedEvent? {
        try await readSession { session in
            try self.events(session, where: "id = ?", [.blob(Array(id.databaseBytes))]).first
        }
    }

    /// The events (sealed content opened with the store's keys) that a condition on `events e`
    /// selects, in its order, through either backend.
    func events(_ session: any SQLSession, where condition: String, _ arguments: [SQLValue]) throws
        -> [RecordedEvent]
    {
        if let shared { return try shared.reader.events(session, where: condition, arguments) }
        return try decodeRecords(
            (session as! SQLiteSession).db, sql: "SELECT \(Self.eventColumns) FROM events e WHERE \(condition)",
            arguments)
    }

    /// The stored events (bodies decompressed, not decoded) that a condition on `events e`
    /// selects, in its order, through either backend: the file's own decoding with its caches,
    /// or the log's reader on a shared database.
    func storedEvents(_ session: any SQLSession, where condition: String, _ arguments: [SQLValue]) throws
        -> [StoredEvent]
    {
        if let shared { return try shared.reader.stored(session, where: condition, arguments) }
        var events: [StoredEvent] = []
        try forEachStoredEvent(
            (session as! SQLiteSession).db, sql: "SELECT \(Self.eventColumns) FROM events e WHERE \(condition)",
            arguments
        ) { event, _ in events.append(event) }
        return events
    }

    /// The current version of `stream`; 0 when it does not exist.
    public func version(of stream: StreamID) async throws -> Int64 {
        try await readSession { session in
            try session.value("SELECT version FROM streams WHERE name = ?", [.text(stream.rawValue)]).integer ?? 0
        }
    }

    /// The newest position in the log; 0 when it is empty.
    public func headPosition() async throws -> Int64 {
        try await readSession { session in try ChainHead.position(session) }
    }

    /// Runs `body` on one read-only snapshot of either backend, mapping storage failures to
    /// ``EventStoreError``. A cancelled task gets `CancellationError`.
    package func readSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        guard let shared else { return try await read { db in try body(SQLiteSession(db)) } }
        do {
            return try await shared.database.transaction(readOnly: true, body)
        } catch {
            throw Self.mapStorageError(error, "reading the log failed")
        }
    }

    /// Runs `body` in one write transaction of either backend (on a file, the writer's turn),
    /// mapping storage failures to ``EventStoreError`` with `message`.
    @discardableResult
    package func writeSession<T: Sendable>(
        _ message: String, _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws -> T {
        guard let shared else { return try await writeMapped(message) { db in try body(SQLiteSession(db)) } }
        do {
            return try await shared.database.transaction(readOnly: false, body)
        } catch {
            throw Self.mapStorageError(error, message)
        }
    }

    /// Runs `body` on a read-only snapshot, mapping SQLite failures to ``EventStoreError``.
    /// A cancelled task gets `CancellationError`.
    ///
    /// With a keyring, another process's erasures (or a master-key rotation) since the last read
    /// are caught up with first (``ContentKeyring/refresh(_:name:)``): a `ticketlog erase` run
    /// beside a serving process is seen by it at its next read.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            guard let keyring else { return try await writer.read(body) }
            let name = path
            return try await writer.read { db in
                try keyring.refresh(SQLiteSession(db), name: name)
                return try body(db)
            }
        } catch {
            throw Self.mapStorageError(error, "reading the log failed")
        }
    }

    /// ``EventStoreError`` and cancellation pass through; anything else (SQLite) becomes
    /// ``EventStoreError/Code/storageFailure`` with `message`.
    static func mapStorageError(_ error: any Error, _ message: String) -> any Error {
        switch error {
        case is EventStoreError, is CancellationError: error
        default: EventStoreError.storage(message, cause: error)
        }
    }

    /// The events a query of ``eventColumns`` selects, in its order, decoded and opened.
    func decodeRecords(_ db: Database, sql: String, _ arguments: [SQLValue]) throws -> [RecordedEvent] {
        var records: [RecordedEvent] = []
        try forEachStoredEvent(db, sql: sql, arguments) { event, _ in records.append(try decodeRecord(event, db: db)) }
        return records
    }

    /// The columns every event read selects, in the order ``forEachStoredEvent(_:sql:_:_:)`` reads them.
    static let eventColumns = "position, version, codec, body, stream, id, type, actor, occurred_at, recorded_at"

    /// An event row's parts: where it is, its stored body decompressed, and its columns.
    struct StoredEvent {
        var position: Int64
        var version: Int64
        var stored: [UInt8]
        var columns: EventColumns

        /// The event's line as `ticketlog read` prints it: its Merkle entry.
        func line() throws -> [UInt8] {
            guard let line = StoredBody.line(stored, columns: columns, position: position, version: version) else {
                throw EventStore.notAnObject(position)
            }
            return line
        }
    }

    /// Runs a query of ``eventColumns`` and hands `body` each row's event (body decompressed,
    /// not decoded) with its stream's key, in the query's order. The rows are read through
    /// SQLite's C API, each column where SQLite holds it: the body is decompressed straight from
    /// SQLite's buffer, and no `Row`, `DatabaseValue` or `Data` is made per column (through
    /// GRDB's rows, a third of the reading a rebuild does beside its writer).
    func forEachStoredEvent(
        _ db: Database, sql: String, _ arguments: [SQLValue], _ body: (StoredEvent, _ streamKey: Int64) throws -> Void
    ) throws {
        let statement = try RawStatement(db, sql: sql)
        statement.bind(arguments)
        try statement.forEachRow { row in
            guard let position = row.integer(0), let version = row.integer(1), let codec = row.integer(2),
                let blob = row.blob(3), let stream = row.integer(4), let id = row.blob(5), let type = row.integer(6),
                let actor = row.integer(7), let occurredAt = row.integer(8), let recordedAt = row.integer(9)
            else {
                throw EventStoreError.corrupt(
                    "an event row has a NULL or wrongly typed column (`ticketlog verify` says more)",
                    position: row.integer(0))
            }
            let event = StoredEvent(
                position: position, version: version,
                stored: try storedBody(codec: codec, bytes: blob, position: position, db: db),
                columns: try eventColumns(
                    position: position, stream: stream, id: id, type: type, actor: actor, occurredAt: occurredAt,
                    recordedAt: recordedAt, db: db))
            try body(event, stream)
        }
    }

    /// A stored event decoded, its sealed content opened with the store's keys.
    func decodeRecord(_ event: StoredEvent, db: Database) throws -> RecordedEvent {
        try opened(
            Self.decodeRecord(
                stored: event.stored, columns: event.columns, position: event.position, version: event.version), db)
    }

    /// The event of a stored body and its columns: ``StoredBodyDecoder`` when it can, else the
    /// spliced canonical JSON through `JSONDecoder` (payload types this build does not know).
    static func decodeRecord(stored: [UInt8], columns: EventColumns, position: Int64, version: Int64) throws
        -> RecordedEvent
    {
        if let event = StoredBodyDecoder.decode(stored, columns: columns, position: position, version: version) {
            return event
        }
        let canonical = try canonicalBody(stored: stored, columns: columns, position: position)
        return try decodeBody(canonical, position: position).recorded(position: position, version: version)
    }

    /// The canonical JSON of an event: its stored body with its columns spliced back in.
    static func canonicalBody(stored: [UInt8], columns: EventColumns, position: Int64) throws -> [UInt8] {
        guard let canonical = StoredBody.splice(stored, columns: columns) else { throw notAnObject(position) }
        return canonical
    }

    /// The refusal of a stored body that is not a JSON object (a damaged or tampered row).
    static func notAnObject(_ position: Int64) -> EventStoreError {
        .corrupt(
            "the event at position \(position) is not a valid event body (its stored body is not a JSON object)",
            position: position)
    }

    /// The row's columns as the canonical JSON spells them.
    func eventColumns(
        position: Int64, stream: Int64, id: UnsafeRawBufferPointer, type: Int64, actor: Int64, occurredAt: Int64,
        recordedAt: Int64, db: Database
    ) throws -> EventColumns {
        guard let uuid = UUID(databaseBytes: id) else {
            throw EventStoreError.badEventID(bytes: id.count, position: position)
        }
        return EventColumns(
            id: uuid, stream: try vocabulary.stream(stream, db), type: try vocabulary.type(type, db),
            actor: try vocabulary.actor(actor, db), occurredAt: occurredAt, recordedAt: recordedAt)
    }

    /// The stored body of an event (``StoredBody``): decompressed when it names a dictionary.
    func storedBody(codec: Int64, bytes: UnsafeRawBufferPointer, position: Int64, db: Database) throws -> [UInt8] {
        let id = BodyCodec.dictionaryID(codec)
        let dictionary = id == BodyCodec.uncompressed ? nil : try dictionaries.dictionary(id, in: db)
        return try StoredEventRow.storedBody(codec: codec, blob: bytes, dictionary: dictionary, position: position)
    }

    static func decodeBody(_ canonical: [UInt8], position: Int64) throws(EventStoreError) -> EventBody {
        do {
            return try CanonicalJSON.decode(EventBody.self, from: canonical)
        } catch {
            throw .corrupt(
                "the event at position \(position) is not a valid event body", position: position, cause: error)
        }
    }
}
