import Foundation
import GRDB
import GRDBSQLite

/// The full-text index of a message history caught up from the first event on a file (a
/// rebuild, a projection reset), built beside the catch-up's writer: in a temporary SQLite file
/// of its own, on a thread of its own, then copied into the log in the catch-up's last
/// transaction.
///
/// FTS5's work (tokenizing, its pending terms, its segments) was a third of the writer's time in
/// a rebuild while the second core was idle half the time: the writer now hands the documents
/// over as they come, a few thousand at a time (``submit(_:)``), and goes on. The index is a function of the
/// events alone (one document per readable post and edit), so it can be built apart; its rows
/// are FTS5's shadow tables, copied as they are into a freshly created index
/// (``copy(into:)``), which reads its structure from them.
///
/// While it is built, the message history's checkpoint carries a version no build has
/// (``MessageHistoryProjection/besideVersion``): a crash, or a catch-up that fails, leaves a
/// message history that the next opening (or catch-up) rebuilds from the start, never one whose
/// index misses what it holds.
final class SearchIndexBuilder: @unchecked Sendable {
    /// The erasures stream's version when the build began: an erasure since may have made texts
    /// unreadable that the index holds, and then the index is not used (``EventStore``).
    let erasuresVersion: Int64
    private let path: String
    private var queue: DatabaseQueue?
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var pending: [[(position: Int64, text: String)]] = []
    private var closed = false
    /// Closed before it finished (``close()``): what is built is not used.
    private var stopped = false
    private var finished = false
    private var retired = false
    /// The message history's checkpoint as this build's last step left it.
    private var position: Int64 = 0
    private var failure: (any Error)?

    /// How many documents the catch-up hands over at a time (``submit(_:)``), and how many such
    /// batches may wait: the catch-up's writer waits beyond that, so memory stays bounded (a
    /// catch-up transaction's documents handed over whole, ~13,000, took the 1M-event rebuild's
    /// peak RSS from 107 to 132–150 MB).
    static let batch = 4_000
    /// FTS5's merge settings while the index is built (`init`), removed before it is copied:
    /// the log keeps its own.
    private static let mergeSettings = [("automerge", 16), ("crisismerge", 64)]
    private static let maximumPending = 4

    init(erasuresVersion: Int64, directory: URL? = nil) throws {
        self.erasuresVersion = erasuresVersion
        path =
            (directory ?? FileManager.default.temporaryDirectory).appendingPathComponent(
                "ticketlog-search-\(UUID().uuidString).sqlite"
            ).path
        var configuration = EventStore.databaseConfiguration()
        // Its transactions span several hand-overs (`run`), each an access of its own.
        configuration.allowsUnsafeTransactions = true
        configuration.prepareDatabase { db in
            // A scratch file: nothing in it has to survive a crash.
            try db.execute(sql: "PRAGMA journal_mode = OFF")
            try db.execute(sql: "PRAGMA synchronous = OFF")
            // Its freed pages (the segments FTS5 merges) hold nothing its live ones do not.
            try db.execute(sql: "PRAGMA secure_delete = OFF")
            try db.execute(sql: "PRAGMA cache_size = -2048")
        }
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.inDatabase { db in
            try db.execute(sql: MessageSearchIndex.schema(.sqlite)[0])
            // Merges of sixteen segments rather than four while it is built: it ends merged into
            // one anyway (`run`), and fewer rounds of merging before that cost less (the 1M
            // rebuild 5.24–5.45 s → 4.96–5.13 s, alternating; 4.54–5.00 s with no final merge).
            let table = MessageSearchIndex.table
            for (name, value) in Self.mergeSettings {
                try db.execute(sql: "INSERT INTO \(table)(\(table), rank) VALUES(?, ?)", arguments: [name, value])
            }
        }
        self.queue = queue
        let thread = Thread { [self] in run(queue) }
        thread.name = "ticketlog-search-index"
        thread.start()
    }

    deinit {
        close()
        try? queue?.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Hands documents over, in position order; waits while ``maximumPending`` batches are
    /// still waiting. Throws the failure of an earlier batch, or when the build was stopped.
    func submit(_ documents: [(position: Int64, text: String)]) throws {
        condition.lock()
        defer { condition.unlock() }
        while pending.count >= Self.maximumPending && failure == nil && !finished { condition.wait() }
        if let failure { throw failure }
        if closed {
            throw EventStoreError(
                code: .storageFailure, message: "the search index built beside the rebuild was stopped")
        }
        guard !documents.isEmpty else { return }
        pending.append(documents)
        condition.broadcast()
    }

    /// Waits until every document handed over is indexed, and throws if one could not be.
    func finish() throws {
        condition.lock()
        defer { condition.unlock() }
        closed = true
        condition.broadcast()
        while !finished { condition.wait() }
        if let failure { throw failure }
    }

    /// Whether the catch-up is done with it: its index was copied into the log, or given up.
    var isRetired: Bool {
        condition.lock()
        defer { condition.unlock() }
        return retired
    }

    /// Whether a catch-up step may go on building with it: it is not retired, and the message
    /// history is where its last step left it. Retires it otherwise.
    func continues(from checkpoint: Int64) -> Bool {
        condition.lock()
        let continues = !retired && checkpoint == position
        condition.unlock()
        if !continues { retire() }
        return continues
    }

    /// A step built the message history up to `checkpoint` with it.
    func built(upTo checkpoint: Int64) {
        condition.lock()
        position = checkpoint
        condition.unlock()
    }

    func retire() {
        close()
        condition.lock()
        retired = true
        condition.unlock()
    }

    /// Stops the build (what is waiting is dropped) and removes the file at once (the thread
    /// may still be writing to it: it goes on writing to the unlinked file, then lets it go), so
    /// that a process ending right after leaves nothing behind.
    func close() {
        condition.lock()
        closed = true
        stopped = true
        pending.removeAll()
        condition.broadcast()
        condition.unlock()
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Replaces the index in `db` with the one built here (``finish()`` first): drops and
    /// creates the index, so that no cached structure of the old one stays, and copies the
    /// shadow tables' rows over those its creation wrote.
    func copy(into db: Database) throws {
        try queue?.close()
        queue = nil
        for table in MessageSearchIndex.tables(.sqlite) { try db.execute(sql: "DROP TABLE IF EXISTS \(table)") }
        for statement in MessageSearchIndex.schema(.sqlite) { try db.execute(sql: statement) }
        var source: OpaquePointer?
        defer { sqlite3_close(source) }
        guard sqlite3_open_v2(path, &source, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let source else {
            throw EventStoreError(
                code: .storageFailure, message: "the search index built beside the rebuild could not be read back")
        }
        for shadow in ["data", "idx", "config"] {
            let table = "\(MessageSearchIndex.table)_\(shadow)"
            try db.execute(sql: "DELETE FROM \(table)")
            var rows: OpaquePointer?
            guard sqlite3_prepare_v2(source, "SELECT * FROM \(table)", -1, &rows, nil) == SQLITE_OK, let rows else {
                throw EventStoreError(
                    code: .storageFailure,
                    message: "the search index built beside the rebuild could not be read back: \(table)")
            }
            defer { sqlite3_finalize(rows) }
            let columns = sqlite3_column_count(rows)
            let insert = try RawStatement(
                db,
                sql:
                    "INSERT INTO \(table) VALUES (\(Array(repeating: "?", count: Int(columns)).joined(separator: ", ")))"
            )
            var step = sqlite3_step(rows)
            while step == SQLITE_ROW {
                let row = RawRow(handle: rows)
                try insert.run((0..<columns).map(row.value))
                step = sqlite3_step(rows)
            }
            guard step == SQLITE_DONE else {
                throw EventStoreError(
                    code: .storageFailure,
                    message: "the search index built beside the rebuild could not be read back: \(table)")
            }
        }
    }

    /// How many documents one transaction of the builder indexes: FTS5 writes its pending terms
    /// out as a segment at each commit, and merges segments as they pile up, so batches committed
    /// one by one (4,000 documents) cost a sixth more CPU in all.
    private static let documentsPerTransaction = 16_000

    private func run(_ queue: DatabaseQueue) {
        var inTransaction = 0
        while true {
            condition.lock()
            while pending.isEmpty && !closed { condition.wait() }
            guard !pending.isEmpty, failure == nil else {
                let completes = failure == nil && !stopped
                condition.unlock()
                do {
                    if inTransaction > 0 { try queue.inDatabase { db in try db.execute(sql: "COMMIT") } }
                    // One segment, no merge under way: copied as built, the index's merges were
                    // left in the middle (four segments of a level being merged, large segments
                    // at the lowest level), and the log's next commits went on with them —
                    // `POST …/messages` after a rebuild answered at p99 15 ms instead of 7–8.
                    // The log keeps FTS5's own merge settings: the builder's are not copied.
                    if completes {
                        try queue.inDatabase { db in
                            try MessageSearchIndex.optimize(db)
                            for (name, _) in Self.mergeSettings {
                                try db.execute(
                                    sql: "DELETE FROM \(MessageSearchIndex.table)_config WHERE k = ?", arguments: [name]
                                )
                            }
                        }
                    }
                } catch {
                    condition.lock()
                    if failure == nil { failure = error }
                    condition.unlock()
                }
                condition.lock()
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let documents = pending.removeFirst()
            condition.broadcast()
            condition.unlock()
            do {
                try queue.inDatabase { db in
                    if inTransaction == 0 { try db.execute(sql: "BEGIN") }
                    let insert = try RawStatement(db, sql: MessageSearchIndex.insertText)
                    for document in documents {
                        try insert.run([.integer(document.position), .text(document.text)])
                    }
                    inTransaction += documents.count
                    if inTransaction >= Self.documentsPerTransaction {
                        try db.execute(sql: "COMMIT")
                        inTransaction = 0
                    }
                }
            } catch {
                condition.lock()
                failure = error
                pending.removeAll()
                condition.broadcast()
                condition.unlock()
            }
        }
    }
}
