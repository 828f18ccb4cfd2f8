import Foundation
import GRDB
import Logging

/// Turns a format-1 log into a format-2 log in place (`ticketlog migrate`): the same events, ids,
/// positions, versions and canonical bodies, so the same chain and head hash.
///
/// One write transaction: the file is either format 1 as before or format 2 complete, whatever
/// happens meanwhile. Every event is checked on the way — its format-1 chain hash recomputed,
/// and its format-2 row spliced back to exactly its canonical body — and the migration refuses
/// (and writes nothing) at the first event that fails either check. Other tables (streams,
/// dictionaries, the Stream Chat sync state, projections) are kept; the projections whose
/// tables changed are rebuilt before it returns.
public enum LogMigration {
    /// What a migration did.
    public struct Report: Sendable {
        /// The format the file had (2 when there was nothing to do).
        public var fromVersion: Int
        public var events: Int64
        public var headPosition: Int64
        /// The chain head after the migration: the one before it.
        public var headHash: String
        public var bytesBefore: Int64
        public var bytesAfter: Int64
    }

    /// How far a migration has come.
    public struct Progress: Sendable {
        public var events: Int64
        public var totalEvents: Int64
    }

    /// Migrates the log at `path` to the current format; does nothing to a current log.
    ///
    /// - Throws: ``EventStoreError`` — ``EventStoreError/Code/unknownFormat`` when the file is
    ///   not a ticketlog log, ``EventStoreError/Code/corruptRecord`` naming the first event that
    ///   does not verify (nothing is written then), ``EventStoreError/Code/storageFailure`` when
    ///   SQLite fails.
    ///
    /// - Parameters:
    ///   - path: the log file.
    ///   - compressionLevel: how the stored bodies are compressed
    ///     (``EventStore/Configuration/compressionLevel``).
    ///   - progress: called every 10,000 events and at the end.
    ///   - logger: where the start and end of the migration are logged.
    public static func migrate(
        path: String, compressionLevel: Int = EventStore.Configuration().compressionLevel,
        progress: (@Sendable (Progress) -> Void)? = nil, logger: Logger = .disabled
    ) throws -> Report {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EventStoreError(code: .storageFailure, message: "no log at \(path): the file does not exist")
        }
        let bytesBefore = fileBytes(path)
        let queue = try openQueue(path)
        let version = try mapped("could not read the format of \(path)") {
            try queue.read { db in try formatVersion(db, path: path) }
        }
        if version == Schema.formatVersion {
            let head = try mapped("could not read the head of \(path)") { try queue.read(ChainHead.link) }
            return Report(
                fromVersion: version, events: head.position, headPosition: head.position,
                headHash: head.hash.hexString, bytesBefore: bytesBefore, bytesAfter: bytesBefore)
        }
        logger.info("Migrating log", metadata: ["ticketlog.path": "\(path)", "ticketlog.from": "\(version)"])
        let (events, head) = try mapped("the migration of \(path) failed; the file is unchanged") {
            try queue.write { db in
                try migrateFromVersion1(db, path: path, compressionLevel: compressionLevel, progress: progress)
            }
        }
        // The projections whose tables changed are rebuilt by opening the log for writing.
        do {
            var configuration = EventStore.Configuration()
            configuration.compressionLevel = compressionLevel
            configuration.createIfMissing = false
            _ = try EventStore(path: path, configuration: configuration, logger: logger)
        }
        // The old table's pages are free now: give them back to the file system.
        try mapped("the migration of \(path) succeeded, but reclaiming the freed space failed") {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                try db.execute(sql: "VACUUM")
            }
        }
        try? queue.close()
        logger.info(
            "Migrated log", metadata: ["ticketlog.path": "\(path)", "ticketlog.events": "\(events)"])
        return Report(
            fromVersion: version, events: events, headPosition: head.position, headHash: head.hash.hexString,
            bytesBefore: bytesBefore, bytesAfter: fileBytes(path))
    }

    /// One connection to the file at `path`, for the maintenance that runs without a store.
    static func openQueue(_ path: String) throws -> DatabaseQueue {
        do {
            return try DatabaseQueue(path: path, configuration: EventStore.databaseConfiguration())
        } catch {
            throw EventStoreError.storage("cannot open the log at \(path)", cause: error)
        }
    }

    private static func formatVersion(_ db: Database, path: String) throws -> Int {
        do {
            try Schema.check(db, path: path)
            return Schema.formatVersion
        } catch let error as EventStoreError where error.code == .unknownFormat {
            let version = try? Int.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'format_version'")
            guard version == 1 else { throw error }
            return 1
        }
    }

    private static func migrateFromVersion1(
        _ db: Database, path: String, compressionLevel: Int, progress: (@Sendable (Progress) -> Void)?
    ) throws -> (Int64, ChainHead) {
        let total = try Int64.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0
        try db.execute(
            sql: """
                DROP TRIGGER IF EXISTS events_are_immutable_update;
                DROP TRIGGER IF EXISTS events_are_immutable_delete;
                DROP INDEX IF EXISTS events_by_id;
                ALTER TABLE events RENAME TO events_format1;
                """)
        try Schema.createEventTables(db)
        try MerkleNodes.createTables(db)
        let dictionaries = Dictionary(
            uniqueKeysWithValues: try DictionaryCache.fetchAll(db, compressionLevel: compressionLevel).map {
                ($0.id, $0)
            })
        let streamNames = Dictionary(
            uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, name FROM streams").map {
                ($0[0] as Int64, $0[1] as String)
            })
        var actorKeys: [Actor: Int64] = [:]
        var typeKeys: [String: Int64] = [:]
        let insert = try db.makeStatement(
            sql: """
                INSERT INTO events(position, stream, version, id, type, actor, occurred_at, recorded_at, codec, body, chain_check)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        var head = ChainHead(position: 0, hash: HashChain.genesis, tree: MerkleEdge())
        var count: Int64 = 0
        let rows = try Row.fetchCursor(
            db, sql: "SELECT position, stream, version, codec, body, hash FROM events_format1 ORDER BY position")
        while let row = try rows.next() {
            let position: Int64 = row[0]
            let streamKey: Int64 = row[1]
            let version: Int64 = row[2]
            let codec: Int64 = row[3]
            let blob: Data = row[4]
            let hash: Data = row[5]
            func refuse(_ reason: String) -> EventStoreError {
                .corrupt(
                    "position \(position) \(reason); `ticketlog verify --database \(path)` says more. Nothing was migrated",
                    position: position)
            }
            guard position == head.position + 1 else {
                throw refuse("follows position \(head.position): the log has a gap")
            }
            let dictionary = codec == BodyCodec.uncompressed ? nil : dictionaries[codec]
            let canonical = try blob.withUnsafeBytes { bytes throws(EventStoreError) in
                try BodyCodec.decode(codec: codec, blob: bytes, dictionary: dictionary, position: position)
            }
            let link = HashChain.link(previous: head.hash, position: position, version: version, body: canonical)
            guard link == Array(hash) else { throw refuse("does not match its chain hash") }
            let body = try EventStore.decodeBody(canonical, position: position)
            var columns = EventColumns(body)
            guard let name = streamNames[streamKey], name == columns.stream else {
                throw refuse("names a stream its stream column does not")
            }
            columns.stream = name
            guard let (stored, line) = StoredBody.split(canonical),
                StoredBody.splice(stored, columns: columns) == canonical
            else { throw refuse("has a body that does not split into format 2's columns and stored body") }
            let actorKey: Int64
            if let key = actorKeys[body.actor] {
                actorKey = key
            } else {
                try db.execute(
                    sql: "INSERT INTO actors(id, role) VALUES (?, ?)",
                    arguments: [body.actor.id, body.actor.role.rawValue])
                actorKey = db.lastInsertedRowID
                actorKeys[body.actor] = actorKey
            }
            let typeKey: Int64
            if let key = typeKeys[columns.type] {
                typeKey = key
            } else {
                try db.execute(sql: "INSERT INTO event_types(name) VALUES (?)", arguments: [columns.type])
                typeKey = db.lastInsertedRowID
                typeKeys[columns.type] = typeKey
            }
            // Each body keeps the dictionary it had: the same codec, recompressed without the
            // members the columns now hold.
            let (storedCodec, storedBlob) = BodyCodec.encode(stored, dictionary: dictionary)
            try insert.execute(arguments: [
                position, streamKey, version, body.id.databaseBytes, typeKey, actorKey,
                columns.occurredAt, columns.recordedAt, storedCodec, Data(storedBlob),
                Data(link.prefix(Schema.chainCheckSize)),
            ])
            try MerkleNodes.append(
                line.leafHash(of: canonical, position: position, version: version), to: &head.tree, db)
            head.position = position
            head.hash = link
            count += 1
            if count % 10_000 == 0 { progress?(Progress(events: count, totalEvents: total)) }
        }
        try db.execute(sql: "DROP TABLE events_format1")
        // The audit trail is the events table in format 2.
        try db.execute(sql: "DROP TABLE IF EXISTS audit_trail")
        if try db.tableExists("projection_checkpoints") {
            try db.execute(sql: "DELETE FROM projection_checkpoints WHERE name = 'audit_trail'")
        }
        let recorded = try ChainHead.link(db)
        if recorded.position == head.position, recorded.hash != head.hash {
            throw EventStoreError.corrupt(
                "the chain head recorded in meta differs from the chain over the events; `ticketlog verify --database \(path)` says more. Nothing was migrated",
                position: head.position)
        }
        if recorded.position > head.position {
            throw EventStoreError.corrupt(
                "the log ends at position \(head.position) but its head records position \(recorded.position): events are missing. Nothing was migrated",
                position: head.position + 1)
        }
        try head.save(db)
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'format_version'", arguments: [Schema.formatVersion])
        progress?(Progress(events: count, totalEvents: total))
        return (count, head)
    }

    private static func mapped<T>(_ message: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError.storage(message, cause: error)
        }
    }

    private static func fileBytes(_ path: String) -> Int64 {
        [path, path + "-wal"].reduce(0) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? 0)
        }
    }
}
