import Foundation
import GRDB
import Logging
import Synchronization

/// The search index of a log on SQLite (``SearchIndexFile``), opened with the log when it is
/// opened for writing and at the first search when it is opened read-only (a read-only opening
/// writes nothing until then).
final class SearchIndexSlot: Sendable {
    private let opened = Mutex<SearchIndexFile?>(nil)

    var file: SearchIndexFile? { opened.withLock { $0 } }

    /// Stops background indexing (waiting for a running step) and lets the index's connection
    /// go, so it closes before the log's (see ``EventStore``'s `deinit`).
    func close() {
        let file = opened.withLock { opened in
            defer { opened = nil }
            return opened
        }
        file?.stop()
    }

    func file(opening open: () throws -> SearchIndexFile) throws -> SearchIndexFile {
        try opened.withLock { opened in
            if let opened { return opened }
            let file = try open()
            opened = file
            return file
        }
    }
}

extension EventStore {
    /// The search index, opened (and checked against the log) if it is not yet. `nil` on a
    /// shared database, where the index is a projection table.
    func searchIndex() throws -> SearchIndexFile? {
        guard shared == nil else { return nil }
        return try searchIndexSlot.file {
            do {
                let file = try SearchIndexFile(logPath: path, secureDelete: configuration.masterKey != nil)
                try prepareSearchIndex(file)
                return file
            } catch {
                throw EventStoreError.storage(
                    "the search index beside the log (\(SearchIndexFile.path(of: path))) could not be opened",
                    cause: error)
            }
        }
    }

    /// Creates the index's tables when missing, and empties the index when it does not match
    /// the log (``SearchIndexFile``: of another log, ahead of its head, or not at its erasures).
    func prepareSearchIndex(_ index: SearchIndexFile) throws {
        try index.connection.writeWithoutTransaction { db in
            for statement in MessageSearchIndex.fileSchema { try db.execute(sql: statement) }
        }
        let stale: String? = try index.write { db in
            guard
                let state = try Row.fetchOne(db, sql: "SELECT log, indexed_through, erasures FROM search.search_state"),
                let through = state[1] as Int64?, through > 0
            else { return nil }
            let session = SQLiteSession(db)
            let head = try ChainHead.position(session)
            let first = try Data.fetchOne(db, sql: "SELECT id FROM main.events WHERE position = 1")
            let erasures = try Self.erasuresRecorded(session)
            if first != state[0] { return "it indexes another log" }
            if through > head { return "it indexes up to position \(through) but the log's head is \(head)" }
            if erasures != state[2] {
                return "it has seen \(state[2] as Int64? ?? 0) erasure(s) but the log recorded \(erasures)"
            }
            return nil
        }
        guard let stale else { return }
        logger.notice(
            "The search index does not match the log: emptied, it is built again",
            metadata: ["ticketlog.reason": "\(stale)", "ticketlog.path": "\(index.path ?? path)"])
        try Self.resetSearchIndex(index)
    }

    /// Empties the index and clears its file's free pages (they may hold forgotten texts' terms).
    static func resetSearchIndex(_ index: SearchIndexFile) throws {
        try index.write { db in try MessageSearchIndex.clear(SQLiteSession(db)) }
        guard !index.sharesLogConnection else { return }
        try index.connection.writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM search")
        }
    }

    /// The version of the `erasures` stream: one more for each erasure recorded.
    static func erasuresRecorded(_ session: any SQLSession) throws -> Int64 {
        try session.value("SELECT version FROM streams WHERE name = ?", [.text(StreamID.erasures.rawValue)])
            .integer ?? 0
    }

    /// Indexes the texts of up to ``SearchIndexFile/positionsPerStep`` positions after what the
    /// index holds, in the caller's transaction on the index's connection. Returns whether the
    /// index has reached the head that transaction sees.
    func indexSearchStep(_ db: Database) throws -> Bool {
        try Self.indexSearchStep(db, decoder: rowDecoder, name: path)
    }

    /// ``indexSearchStep(_:)`` with what it needs of the store (`name`: the log's, for errors),
    /// not the store: background work keeps no released store open.
    static func indexSearchStep(_ db: Database, decoder: EventRowDecoder, name: String) throws -> Bool {
        let session = SQLiteSession(db)
        let through = try Int64.fetchOne(db, sql: "SELECT indexed_through FROM search.search_state") ?? 0
        let head = try ChainHead.position(session)
        guard through < head else { return true }
        // Another process's erasures since this one looked: their texts are not indexed.
        try decoder.keyring?.refresh(session, name: name)
        let end = min(head, through + SearchIndexFile.positionsPerStep)
        try indexSearchRange(db, after: through, through: end, decoder: decoder, name: name)
        return end == head
    }

    /// Indexes the texts of the positions after `after` through `through` (the index holds
    /// exactly those up to `after`), read from the log.
    static func indexSearchRange(
        _ db: Database, after through: Int64, through end: Int64, decoder: EventRowDecoder, name: String
    ) throws {
        let session = SQLiteSession(db)
        if through == 0 {
            try db.execute(
                sql: "UPDATE search.search_state SET log = (SELECT id FROM main.events WHERE position = 1)")
        }
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: """
                    SELECT \(Self.eventColumns) FROM main.events
                    WHERE position > ? AND position <= ?
                      AND type IN (SELECT key FROM main.event_types WHERE name IN ('message.posted', 'message.edited'))
                    ORDER BY position
                    """), arguments: [through, end])
        while let row = try rows.next() {
            let event = try decoder.decodeRecord(row, db: db)
            if let text = event.payload.messageText, MessageSearchIndex.isIndexable(text, of: event) {
                try MessageSearchIndex.add(event.position, text: text, session)
            }
        }
        try db.execute(sql: "UPDATE search.search_state SET indexed_through = ?", arguments: [end])
    }

    /// Brings the index up to the log's head as it is now (a transaction per step), on the
    /// calling thread.
    static func catchUpSearchIndex(_ index: SearchIndexFile, decoder: EventRowDecoder, name: String) throws {
        while try !index.write({ db in try indexSearchStep(db, decoder: decoder, name: name) }) {}
    }

    /// Brings the search index up to the log's head as it is now — what every search does
    /// first. On SQLite the index is written behind the appends, in a file of its own (issue
    /// 18); call this to have it hold everything appended so far (before a backup of both
    /// files, or to time the append with the index it keeps). Nothing to do on PostgreSQL,
    /// where the index is written in the append's transaction.
    public func catchUpSearchIndex() async throws {
        guard let index = try searchIndex() else { return }
        let (decoder, name) = (rowDecoder, path)
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                index.queue.async {
                    continuation.resume(
                        with: Result { try Self.catchUpSearchIndex(index, decoder: decoder, name: name) })
                }
            }
        } catch {
            throw Self.mapStorageError(error, "the search index could not be brought up to the log")
        }
    }

    /// After a commit: indexes what the log gained, behind it on a thread of its own, unless a
    /// pass is running (it then goes on until it finds nothing new).
    func scheduleSearchIndexing() {
        guard let index = searchIndexSlot.file, index.markCommitted() else { return }
        // The pass keeps no reference to the store, and none to the index between its steps: a
        // store released closes the index (waiting for a running step) and then the log.
        let (slot, decoder, name, logger) = (searchIndexSlot, rowDecoder, path, logger)
        index.queue.async { Self.indexingStep(slot, decoder: decoder, name: name, logger: logger) }
    }

    /// One step of a background pass; the next is queued after whatever else waits for the index
    /// (a search's catch-up, a rebuild's reset), until the index holds the head.
    private static func indexingStep(
        _ slot: SearchIndexSlot, decoder: EventRowDecoder, name: String, logger: Logger
    ) {
        guard let index = slot.file else { return }
        var reachedHead = true
        do {
            reachedHead = try index.write { db in try indexSearchStep(db, decoder: decoder, name: name) }
        } catch {
            logger.error(
                "Indexing messages for search failed (searches will try again)",
                metadata: ["ticketlog.error": "\(error)"])
        }
        guard !reachedHead || index.passEnded() else { return }
        index.queue.async { indexingStep(slot, decoder: decoder, name: name, logger: logger) }
    }

    /// Takes out of the index every text sealed with one of `keys` — each post and edit is a
    /// document — while those keys still open it, and records that the index has seen the
    /// erasure the caller's transaction records (an erasure, before it destroys the keys).
    /// `candidates` narrows the events to look at: a condition on `e`, with its arguments.
    ///
    /// On a file the index is first brought up to the log's committed head (the erasure holds
    /// the writer, so no event commits meanwhile; those of its own transaction are indexed
    /// after it, as erased). A log in memory does it all in the caller's transaction.
    func forgetSearchTexts(
        sealedWith keys: Set<String>, candidates: (condition: String, arguments: [SQLValue])?,
        _ session: any SQLSession
    ) throws {
        guard shared == nil else {
            return try forgetSharedSearchTexts(sealedWith: keys, candidates: candidates, session)
        }
        let erasures = try Self.erasuresRecorded(session) + 1
        guard let index = try searchIndex() else { return }
        let forget = { (db: Database) throws in
            while try !self.indexSearchStep(db) {}
            try self.removeSearchTexts(sealedWith: keys, candidates: candidates, db)
            try db.execute(sql: "UPDATE search.search_state SET erasures = ?", arguments: [erasures])
        }
        if index.sharesLogConnection {
            try forget((session as! SQLiteSession).db)
        } else {
            try index.write(forget)
        }
    }

    private func removeSearchTexts(
        sealedWith keys: Set<String>, candidates: (condition: String, arguments: [SQLValue])?, _ db: Database
    ) throws {
        guard !keys.isEmpty else { return }
        let session = SQLiteSession(db)
        let indexed = try Int64.fetchOne(db, sql: "SELECT indexed_through FROM search.search_state") ?? 0
        let condition = """
            e.type IN (SELECT key FROM event_types WHERE name IN ('message.posted', 'message.edited'))\(candidates.map { " AND " + $0.condition } ?? "") AND e.position <= \(indexed) AND e.position > ? ORDER BY e.position LIMIT 1000
            """
        var removals: [(Int64, String)] = []
        // The events as stored, a page at a time, to read which key seals each text; then
        // opened (an FTS5 contentless index removes a document only given the text it indexed).
        var page: [StoredEvent] = []
        repeat {
            page = try storedEvents(
                session, where: condition, (candidates?.arguments ?? []) + [.integer(page.last?.position ?? 0)])
            for stored in page {
                let sealed = try Self.decodeRecord(
                    stored: stored.stored, columns: stored.columns, position: stored.position, version: stored.version)
                guard let text = sealed.payload.messageText, let id = SealedField.keyID(of: text),
                    keys.contains(String(id))
                else { continue }
                let opened = try keyring.map { try $0.open(sealed, session) } ?? sealed
                if let plain = opened.payload.messageText, MessageSearchIndex.isIndexable(plain, of: opened) {
                    removals.append((stored.position, plain))
                }
            }
        } while !page.isEmpty
        for (document, text) in removals { try MessageSearchIndex.remove(document, text: text, db) }
    }

    /// The index's part of a scrub: its forgotten terms out of its segments (FTS5's
    /// `optimize`), its WAL truncated, its free pages cleared (`secure_delete` and `VACUUM`).
    /// `false` when readers kept its WAL from being truncated.
    func scrubSearchIndex() throws -> Bool {
        guard let index = searchIndexSlot.file, !index.sharesLogConnection else { return true }
        return try index.connection.writeWithoutTransaction { db in
            func truncate() throws -> Bool {
                (try Row.fetchOne(db, sql: "PRAGMA search.wal_checkpoint(TRUNCATE)")?[0] as Int?) == 0
            }
            try MessageSearchIndex.optimize(db)
            let first = try truncate()
            try db.execute(sql: "VACUUM search")
            return try truncate() && first
        }
    }
}

extension EventStore {
    /// The positions of the documents the search index holds, once it holds the log's head:
    /// what a comparison of two logs' indexes (tests, copies) looks at.
    func searchDocuments() async throws -> [Int64] {
        if shared != nil {
            return try await readSession { session in
                try session.rows("SELECT position FROM \(MessageSearchIndex.table) ORDER BY position", [])
                    .compactMap { $0[0].integer }
            }
        }
        try await catchUpSearchIndex()
        guard let index = try searchIndex() else { return [] }
        return try await index.connection.read { db in
            try Int64.fetchAll(db, sql: "SELECT rowid FROM search.\(MessageSearchIndex.table) ORDER BY rowid")
        }
    }
}
