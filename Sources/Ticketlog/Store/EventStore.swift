import CSQLiteWAL
import Foundation
import GRDB
import Logging
import Synchronization

/// The append-only, hash-chained event log in one SQLite file.
///
/// Open one `EventStore` per file and process and share it: it is `Sendable`, reads run
/// concurrently on WAL snapshots, and concurrent appends are coalesced into shared transactions
/// (group commit) on GRDB's single writer connection.
///
/// ```swift
/// let store = try EventStore(path: "tickets.sqlite")
/// let opened = ProposedEvent(actor: admin, payload: .ticketOpened(.init(title: "Launch video", brand: "acme", creator: "kim")))
/// try await store.append([opened], to: .ticket("42")!, expectedVersion: .noStream)
/// ```
public final class EventStore: Sendable {
    /// The file format this build reads and writes (`meta.format_version`).
    public static let formatVersion = Schema.formatVersion

    /// The file path, or `:memory:` for an in-memory store.
    public let path: String
    public let configuration: Configuration
    /// The SQLite file's connections; `nil` for a log on a shared database.
    private let file: (any DatabaseWriter)?
    /// Checkpoints the file's WAL beside the writer (`nil` read-only, in memory and on a
    /// shared database).
    let checkpointer: WALCheckpointer?
    /// The log on a shared database (PostgreSQL); `nil` for a file.
    let shared: SharedStorage?
    let logger: Logger
    let dictionaries: DictionaryCache
    let notifier: CommitNotifier
    let vocabulary = RowVocabulary()
    /// The content keys, when the log is opened with a master key (issue 17).
    let keyring: ContentKeyring?
    /// Where the log's sealed content starts (issue 17): the first position appended with a
    /// master key. `nil` for a log that stores its content in plaintext.
    public let sealedFromPosition: Int64?
    private let committerBox: Mutex<GroupCommitter<QueuedAppend, AppendResult>?> = Mutex(nil)
    /// The idle connections of ``pointRead(_:)``, opened as concurrent reads need them.
    private let pointReads = Mutex(PointReads())

    private struct PointReads {
        var idle: [DatabaseQueue] = []
        var opened = 0
        /// False once a connection failed to open, and once the store is closing.
        var available = true
    }

    /// At most this many connections for ``pointRead(_:)``; more concurrent reads go through
    /// the pool.
    private static let pointReaders = 8

    deinit {
        // Before the pool's connections: the writer's, closing last, removes the WAL.
        pointReads.withLock { $0 = PointReads(idle: [], opened: 0, available: false) }
        checkpointer?.close()
    }

    /// Runs `body` — one statement — on a connection of its own to the file, on the calling
    /// thread: for the reads made on every API request to a ticket (``ticketAccess(_:)``),
    /// without the pool's two thread hops (a pool read costs such a request about 180 µs of CPU
    /// under load, the statement itself a few µs). Each connection is used by one read at a
    /// time, taken from and given back to a list of idle ones (up to ``pointReaders``, so
    /// concurrent requests never wait on each other's statements). A statement is its own
    /// snapshot: it reads the log as committed, by any process, at that moment. `nil` — the
    /// caller goes through ``readSession(_:)`` — for a log in memory, opened read-only, in
    /// PostgreSQL, or when all the connections are busy.
    func pointRead<T>(_ body: (Database) throws -> T) throws -> T? {
        let taken = pointReads.withLock { state -> (queue: DatabaseQueue?, open: Bool) in
            guard state.available else { return (nil, false) }
            if let queue = state.idle.popLast() { return (queue, false) }
            guard state.opened < Self.pointReaders, file is DatabasePool else { return (nil, false) }
            state.opened += 1
            return (nil, true)
        }
        var queue = taken.queue
        if taken.open {
            do {
                // Opened for writing and told to refuse writes: a read-only connection cannot
                // share the WAL index and rebuilds it from the whole WAL at every read.
                var configuration = Self.databaseConfiguration()
                configuration.prepareDatabase { db in
                    try db.execute(sql: "PRAGMA query_only = 1")
                    try db.execute(sql: "PRAGMA cache_size = -512")
                }
                queue = try DatabaseQueue(path: path, configuration: configuration)
            } catch {
                logger.warning(
                    "Point reads go through the pool: a connection of their own did not open",
                    metadata: ["ticketlog.error": "\(error)"])
                pointReads.withLock { $0.available = false }
                return nil
            }
        }
        guard let queue else { return nil }
        defer {
            pointReads.withLock { state in
                if state.available { state.idle.append(queue) }
            }
        }
        return try queue.inDatabase(body)
    }

    /// Opens (or creates) the log at `path`.
    ///
    /// - Throws: ``EventStoreError`` with ``EventStoreError/Code/unknownFormat`` when the file is
    ///   not a ticketlog log or was written by a newer format, ``EventStoreError/Code/storageFailure``
    ///   when SQLite cannot open it.
    public convenience init(path: String, configuration: Configuration = .init(), logger: Logger = .disabled) throws {
        if !configuration.createIfMissing && !FileManager.default.fileExists(atPath: path) {
            throw EventStoreError(code: .storageFailure, message: "no log at \(path): the file does not exist")
        }
        let writer: any DatabaseWriter
        var checkpointer: WALCheckpointer?
        do {
            if configuration.readOnly {
                // A queue, not a pool: opening a pool sets the journal mode, a write.
                var readOnly = Self.databaseConfiguration()
                readOnly.readonly = true
                writer = try DatabaseQueue(path: path, configuration: readOnly)
            } else {
                try Self.checkFormatWithoutWriting(
                    path: path, masterKey: configuration.masterKey,
                    forWriting: !configuration.writesSealedContentWithoutKey)
                var pool = Self.databaseConfiguration()
                pool.maximumReaderCount = max(1, configuration.maximumReaders)
                let readerCache = max(1, configuration.readerCacheBytes / 1024)
                // The WAL is checkpointed beside the writer, not in its commits. The pool's
                // configuration keeps the checkpointer as long as the writer connection lives.
                let walCheckpointer = WALCheckpointer(path: path, thresholds: configuration.walCheckpointFrames)
                checkpointer = walCheckpointer
                // Runs on every connection; the writer then sets its own cache below.
                pool.prepareDatabase { db in
                    try db.execute(sql: "PRAGMA cache_size = -\(readerCache)")
                    if !db.configuration.readonly { walCheckpointer.attach(to: db) }
                }
                writer = try DatabasePool(path: WALWrites.uri(path), configuration: pool)
            }
        } catch {
            throw Self.openError(error, path: path, forWriting: !configuration.readOnly)
        }
        try self.init(
            writer: writer, checkpointer: checkpointer, path: path, configuration: configuration, logger: logger)
    }

    /// An in-memory log, gone when the store is released. For tests and experiments.
    public static func inMemory(configuration: Configuration = .init(), logger: Logger = .disabled) throws -> EventStore
    {
        let queue = try DatabaseQueue(configuration: databaseConfiguration())
        return try EventStore(
            writer: queue, checkpointer: nil, path: ":memory:", configuration: configuration, logger: logger)
    }

    private init(
        writer: any DatabaseWriter, checkpointer: WALCheckpointer?, path: String, configuration: Configuration,
        logger: Logger
    ) throws {
        file = writer
        self.checkpointer = checkpointer
        shared = nil
        self.path = path
        self.configuration = configuration
        self.logger = logger
        let keyring = configuration.masterKey.map(ContentKeyring.init(master:))
        self.keyring = keyring
        let head: Int64
        let stored: [LZ4Dictionary]
        let sealedFrom: Int64?
        do {
            if configuration.readOnly {
                (head, stored, sealedFrom) = try writer.read { db in
                    guard try Schema.check(db, path: path) == .log else {
                        throw EventStoreError(
                            code: .unknownFormat, message: "\(path) is not a ticketlog log (it is empty)")
                    }
                    try Self.checkMasterKey(db, path: path, masterKey: configuration.masterKey, forWriting: false)
                    if let keyring, try db.tableExists("content_keys") { try keyring.load(db) }
                    let head = try Int64.fetchOne(db, sql: "SELECT max(position) FROM events") ?? 0
                    return (
                        head, try DictionaryCache.fetchAll(db, compressionLevel: configuration.compressionLevel),
                        try Self.sealedFromPosition(db)
                    )
                }
            } else {
                // Set on the writer connection after opening: GRDB's WAL set-up picks NORMAL,
                // and only the writer's setting matters for commits.
                let synchronous = configuration.durability == .full ? "FULL" : "NORMAL"
                try writer.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                    try db.execute(sql: "PRAGMA cache_size = -\(max(1, configuration.writerCacheBytes / 1024))")
                    // Each append of a group runs in a savepoint, whose journal of page images
                    // would otherwise go to a temporary file: a write syscall per page touched.
                    try db.execute(sql: "PRAGMA temp_store = MEMORY")
                    // An encrypted log zeroes what it frees: an erased key leaves no image in
                    // free pages (issue 17). A log without a master key promises no erasure
                    // (`erase` refuses to run on it) and frees without writing: SQLite's own
                    // default, which builds such as Debian's turn on (`SECURE_DELETE`), so that
                    // a rebuild's reset wrote every projection page again as zeros and each FTS5
                    // merge every segment it replaced.
                    try db.execute(sql: "PRAGMA secure_delete = \(configuration.masterKey != nil ? "ON" : "OFF")")
                }
                (head, stored, sealedFrom) = try writer.write { db in
                    try Schema.prepare(db, path: path)
                    // In-memory logs come here without the read-only check above.
                    try Self.checkMasterKey(
                        db, path: path, masterKey: configuration.masterKey,
                        forWriting: !configuration.writesSealedContentWithoutKey)
                    if let keyring {
                        try Self.prepareEncryption(db, masterKey: keyring.master)
                        try keyring.load(db)
                    }
                    try Self.prepareProjections(SQLiteSession(db))
                    try Self.prepareSyncState(db)
                    let head = try Int64.fetchOne(db, sql: "SELECT max(position) FROM events") ?? 0
                    return (
                        head, try DictionaryCache.fetchAll(db, compressionLevel: configuration.compressionLevel),
                        try Self.sealedFromPosition(db)
                    )
                }
            }
        } catch {
            throw Self.openError(error, path: path, forWriting: !configuration.readOnly)
        }
        dictionaries = DictionaryCache(stored, compressionLevel: configuration.compressionLevel)
        sealedFromPosition = sealedFrom
        notifier = CommitNotifier(head: head)
        // Projections new in this build, or whose version changed, catch up before first use
        // (unless the opener asked for events only). A log written before the Merkle tree gets it.
        do {
            if !configuration.readOnly { try writer.write { db in try self.buildTreeIfMissing(db) } }
            while !configuration.readOnly, configuration.inlineProjections,
                try writer.write({ db in try self.catchUpStep(db, limit: configuration.projectionBatchSize) }) != nil
            {}
        } catch {
            throw Self.openError(error, path: path, forWriting: !configuration.readOnly)
        }
        logger.debug(
            "Opened event log",
            metadata: [
                "ticketlog.path": "\(path)", "ticketlog.head": "\(head)", "ticketlog.dictionaries": "\(stored.count)",
            ])
    }

    /// A store over a log on a shared database, opened and checked by the backend's module
    /// (`TicketlogPostgres`): `writer` was made in a transaction that saw the log's tables, and
    /// `head` is the position it read. Projections behind the head catch up before it returns,
    /// unless `catchUpProjections` is false (`verify` and copies must open a damaged log).
    package static func open(
        shared database: any SharedDatabase, writer: LogWriter?, head: Int64, keyring: ContentKeyring? = nil,
        sealedFrom: Int64? = nil, configuration: Configuration, catchUpProjections: Bool = true, logger: Logger
    ) async throws -> EventStore {
        let store = EventStore(
            shared: database, writer: writer, head: head, keyring: keyring, sealedFrom: sealedFrom,
            configuration: configuration, logger: logger)
        if catchUpProjections && configuration.inlineProjections && writer != nil {
            try await store.catchUpProjections()
        }
        return store
    }

    private init(
        shared database: any SharedDatabase, writer: LogWriter?, head: Int64, keyring: ContentKeyring?,
        sealedFrom: Int64?, configuration: Configuration, logger: Logger
    ) {
        file = nil
        checkpointer = nil
        shared = SharedStorage(database: database, writer: writer, reader: LogReader(keyring: keyring))
        path = database.name
        self.configuration = configuration
        self.logger = logger
        self.keyring = keyring
        sealedFromPosition = sealedFrom
        dictionaries = DictionaryCache([], compressionLevel: configuration.compressionLevel)
        notifier = CommitNotifier(head: head)
    }

    /// Whether reads run on connections of their own beside the writer (a pool on a WAL file),
    /// rather than queued behind it (an in-memory or read-only log).
    var readsBesideWriter: Bool { file is DatabasePool }

    /// The SQLite file's connections.
    ///
    /// - Throws: ``EventStoreError/Code/unsupported`` on a shared database, for the operations
    ///   that have not been written over ``SQLSession`` yet (each says which it is).
    var writer: any DatabaseWriter {
        get throws(EventStoreError) {
            guard let file else {
                throw EventStoreError(
                    code: .unsupported,
                    message: "this operation does not run on a log in PostgreSQL yet: it needs an SQLite file")
            }
            return file
        }
    }

    /// Opening a pool switches the file to WAL mode, a write. A file that is not a ticketlog log
    /// must be refused before that, so an existing, non-empty file is first checked read-only.
    private static func checkFormatWithoutWriting(path: String, masterKey: MasterKey?, forWriting: Bool) throws {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size > 0 else { return }
        var configuration = databaseConfiguration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.read { db in
            try Schema.check(db, path: path)
            try checkMasterKey(db, path: path, masterKey: masterKey, forWriting: forWriting)
        }
    }

    /// Every connection of a store is configured here, so SQLite gets its counting allocator
    /// (``sqliteMemoryInUse``) before the process's first connection, when it can.
    static func databaseConfiguration() -> GRDB.Configuration {
        _ = ticketlog_sqlite_memory_install()
        var database = GRDB.Configuration()
        database.busyMode = .timeout(10)
        return database
    }

    private static func openError(_ error: any Error, path: String, forWriting: Bool) -> EventStoreError {
        if let error = error as? EventStoreError { return error }
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_NOTADB {
            return EventStoreError(
                code: .unknownFormat, message: "\(path) is not a ticketlog log (not an SQLite database)", cause: error)
        }
        let manager = FileManager.default
        let directory = (path as NSString).deletingLastPathComponent
        if forWriting,
            manager.fileExists(atPath: path)
                && (!manager.isWritableFile(atPath: path)
                    || !manager.isWritableFile(atPath: directory.isEmpty ? "." : directory))
        {
            return EventStoreError(
                code: .storageFailure,
                message: "cannot open the log at \(path) for writing: the file or its directory is read-only "
                    + "(commands that only read — verify, read, stats — still work)",
                cause: error)
        }
        return .storage("cannot open the log at \(path)", cause: error)
    }

    var committer: GroupCommitter<QueuedAppend, AppendResult> {
        committerBox.withLock { box in
            if let committer = box { return committer }
            let committer = GroupCommitter<QueuedAppend, AppendResult>(
                maximumBatchWeight: configuration.maximumEventsPerTransaction, callerMetadata: logger.metadataProvider,
                executor: shared == nil ? CommitExecutor() : nil
            ) { [weak self] requests in
                guard let self else {
                    return requests.map { _ in
                        .failure(EventStoreError(code: .storageFailure, message: "the event store was closed"))
                    }
                }
                return await self.commit(requests)
            }
            box = committer
            return committer
        }
    }
}

extension Logger {
    /// A logger that drops everything: the default when the embedder passes none.
    public static var disabled: Logger {
        Logger(label: "ticketlog", factory: { _ in SwiftLogNoOpLogHandler() })
    }
}
