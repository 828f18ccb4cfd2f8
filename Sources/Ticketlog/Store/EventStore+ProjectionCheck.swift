import Crypto
import Foundation
import GRDB

/// What ``EventStore/checkProjections(temporaryDirectory:)`` found: each projection table as the
/// log holds it, against the same table rebuilt from the events.
public struct ProjectionCheck: Sendable, Encodable {
    public struct Table: Sendable, Encodable {
        public var name: String
        /// Rows of the table as the log holds it, and after a rebuild from the events.
        public var rows: Int64
        public var rebuiltRows: Int64
        /// Whether every row is the same (SHA-256 over all rows in column order).
        public var matches: Bool
        /// `false` for the search index of an encrypted log checked without its master key: the
        /// rebuild cannot read the texts it indexes (`matches` then says nothing).
        public var checked = true
    }

    public struct Projection: Sendable, Encodable {
        public var name: String
        /// The last position the projection had applied; equal to `headPosition` when current.
        public var checkpoint: Int64
    }

    /// The head of the snapshot the check ran on.
    public var headPosition: Int64
    public var projections: [Projection]
    public var tables: [Table]

    /// Every projection is current and every table equals its rebuild.
    public var holds: Bool {
        projections.allSatisfy { $0.checkpoint == headPosition } && tables.allSatisfy { $0.matches || !$0.checked }
    }
}

extension EventStore {
    /// Checks that the projections are what the events say they should be: takes a consistent
    /// copy of the file (`VACUUM INTO`), rebuilds every projection of the copy from its events,
    /// and compares each projection table row by row with the table as it was. The log itself is
    /// not changed, and appends may continue meanwhile (the check is of the log as of its start).
    ///
    /// Costs a copy of the file and a full rebuild (about a minute per million events), in
    /// `temporaryDirectory` (default: the system's), removed afterwards.
    public func checkProjections(temporaryDirectory: URL? = nil) async throws -> ProjectionCheck {
        if let shared { return try await checkProjections(shared) }
        let directory = temporaryDirectory ?? FileManager.default.temporaryDirectory
        let copy = directory.appendingPathComponent("ticketlog-projection-check-\(UUID().uuidString).sqlite").path
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: copy + suffix) }
        }
        do {
            // VACUUM refuses to run inside a transaction, which `read` would open; the copy is
            // one consistent snapshot all the same.
            try await writer.unsafeRead { db in try db.execute(sql: "VACUUM INTO ?", arguments: [copy]) }
        } catch {
            throw Self.mapStorageError(error, "could not copy the log to \(copy) for the projection check")
        }

        let before: (head: Int64, projections: [ProjectionCheck.Projection], digests: [String: TableDigest])
        do {
            let queue = try DatabaseQueue(path: copy, configuration: Self.databaseConfiguration())
            before = try await queue.read { db in
                let checkpoints = try ProjectionCheckpoints.fetchAll(SQLiteSession(db))
                return (
                    try Int64.fetchOne(db, sql: "SELECT max(position) FROM events") ?? 0,
                    Self.projections.map { .init(name: $0.name, checkpoint: checkpoints[$0.name]?.position ?? 0) },
                    try Self.projectionDigests(db)
                )
            }
            try queue.close()
        } catch {
            throw Self.mapStorageError(error, "could not read the copy \(copy)")
        }

        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.dictionaryTrainingThreshold = nil
        configuration.writesSealedContentWithoutKey = true
        configuration.masterKey = self.configuration.masterKey
        let unreadable = keyring == nil && sealedFromPosition != nil
        let rebuilt = try EventStore(path: copy, configuration: configuration, logger: logger)
        try await rebuilt.rebuildProjections()
        let after = try await rebuilt.read { db in try Self.projectionDigests(db) }

        let tables = Self.projections.flatMap { $0.readableTables(.sqlite) }.map { name in
            let old = before.digests[name] ?? TableDigest(rows: 0, hash: [])
            let new = after[name] ?? TableDigest(rows: 0, hash: [])
            var table = ProjectionCheck.Table(name: name, rows: old.rows, rebuiltRows: new.rows, matches: old == new)
            if unreadable, name == MessageSearchIndex.terms {
                table.checked = false
            }
            return table
        }
        return ProjectionCheck(headPosition: before.head, projections: before.projections, tables: tables)
    }

    /// The check on a shared database, without copying the log out of it: a scratch schema of
    /// its own receives, under the head lock (no node commits meanwhile), a copy of every
    /// projection table as of the head; then the projections are rebuilt in that schema from the
    /// events up to that head — a page a transaction, reading the events where they are (the
    /// schema first in `search_path`) — while the nodes go on appending; then each table's copy
    /// and rebuild are compared in the server (`EXCEPT ALL` both ways: equal as multisets of
    /// rows). The schema is dropped afterwards, whatever happens.
    private func checkProjections(_ shared: SharedStorage) async throws -> ProjectionCheck {
        let scratch = "ticketlog_check_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let tables = Self.projections.flatMap { $0.tables(.postgres) }
        let unreadable = keyring == nil && sealedFromPosition != nil
        do {
            let check = try await checkProjections(shared, scratch: scratch, tables: tables, unreadable: unreadable)
            try await shared.database.maintain(["DROP SCHEMA \(scratch) CASCADE"])
            return check
        } catch {
            try? await shared.database.maintain(["DROP SCHEMA IF EXISTS \(scratch) CASCADE"])
            throw Self.mapStorageError(error, "the projection check failed")
        }
    }

    private func checkProjections(_ shared: SharedStorage, scratch: String, tables: [String], unreadable: Bool)
        async throws -> ProjectionCheck
    {
        let (head, checkpoints) = try await shared.database.transaction(readOnly: false) { session in
            try session.execute("CREATE SCHEMA \(scratch)")
            try LogWriter.lockHead(session)
            for table in tables {
                try session.execute("CREATE TABLE \(scratch).before_\(table) AS TABLE public.\(table)")
            }
            return (try ChainHead.position(session), try ProjectionCheckpoints.fetchAll(session))
        }
        try await shared.database.transaction(readOnly: false) { session in
            try session.execute("SET LOCAL search_path TO \(scratch), public")
            for projection in Self.projections { try projection.createSchema(session) }
        }
        var after: Int64 = 0
        let reader = LogReader(keyring: keyring)
        let batch = configuration.projectionBatchSize
        while after < head {
            let from = after
            after = try await shared.database.transaction(readOnly: false) { session in
                try session.execute("SET LOCAL search_path TO \(scratch), public")
                let events = try reader.projected(session, from: from + 1, limit: Int(min(Int64(batch), head - from)))
                guard let last = events.last else {
                    throw EventStoreError.corrupt(
                        "the projections cannot be rebuilt: no event follows position \(from)", position: from + 1)
                }
                var projections = ProjectionSession(Self.projections)
                for event in events { try projections.apply(event, session) }
                try projections.finish(session)
                return last.event.position
            }
        }
        let compared = try await shared.database.transaction(readOnly: true) { session in
            try tables.map { table -> ProjectionCheck.Table in
                let before = "\(scratch).before_\(table)"
                let rebuilt = "\(scratch).\(table)"
                let row = try session.rows(
                    """
                    SELECT (SELECT count(*) FROM \(before)), (SELECT count(*) FROM \(rebuilt)),
                           (SELECT count(*) FROM (SELECT * FROM \(before) EXCEPT ALL SELECT * FROM \(rebuilt)) AS gone),
                           (SELECT count(*) FROM (SELECT * FROM \(rebuilt) EXCEPT ALL SELECT * FROM \(before)) AS new)
                    """, []
                ).first
                var result = ProjectionCheck.Table(
                    name: table, rows: row?[0].integer ?? 0, rebuiltRows: row?[1].integer ?? 0,
                    matches: row?[2].integer == 0 && row?[3].integer == 0)
                if unreadable && table == MessageSearchIndex.table { result.checked = false }
                return result
            }
        }
        return ProjectionCheck(
            headPosition: head,
            projections: Self.projections.map { .init(name: $0.name, checkpoint: checkpoints[$0.name]?.position ?? 0) },
            tables: compared)
    }

    struct TableDigest: Equatable {
        var rows: Int64
        var hash: [UInt8]
    }

    /// SHA-256 over every row of every projection table, rows in the order of all their columns.
    private static func projectionDigests(_ db: Database) throws -> [String: TableDigest] {
        var digests: [String: TableDigest] = [:]
        for table in projections.flatMap({ $0.readableTables(.sqlite) }) {
            let columns = try db.columns(in: table).count
            let order = (1...max(1, columns)).map(String.init).joined(separator: ", ")
            var hasher = SHA256()
            var rows: Int64 = 0
            let cursor = try Row.fetchCursor(
                db, sql: "SELECT * FROM \(table.quotedDatabaseIdentifier) ORDER BY \(order)")
            while let row = try cursor.next() {
                rows += 1
                for value in row.databaseValues { hash(value, into: &hasher) }
            }
            digests[table] = TableDigest(rows: rows, hash: Array(hasher.finalize()))
        }
        return digests
    }

    /// Each value with its storage class and length, so that no two rows hash alike by accident.
    private static func hash(_ value: DatabaseValue, into hasher: inout SHA256) {
        func put(_ tag: UInt8, _ bytes: some Collection<UInt8>) {
            var header = [tag]
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { header += $0 }
            hasher.update(data: header)
            hasher.update(data: Array(bytes))
        }
        switch value.storage {
        case .null: put(0, [])
        case .int64(let int): withUnsafeBytes(of: int.littleEndian) { put(1, Array($0)) }
        case .double(let double): withUnsafeBytes(of: double.bitPattern.littleEndian) { put(2, Array($0)) }
        case .string(let string): put(3, Array(string.utf8))
        case .blob(let data): put(4, data)
        }
    }
}
