import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization
import Ticketlog

/// The log in a PostgreSQL database: the same tables, bodies, dictionaries and chain as the
/// SQLite file, behind the same storage boundary (ARCHITECTURE.md, "Storage boundary").
///
/// What is built: opening with the format check (or creating the log's tables in an empty
/// database), appends from several processes at once (``LogWriter``: positions gap-free and in
/// commit order) with the projections kept up in the same transaction, commands decided inside
/// the append's transaction, the projections' read side, subscriptions woken by `LISTEN`,
/// `verify`, and copies between SQLite files and PostgreSQL with the same head hash. One
/// `EventStore` over either backend, and so the server on PostgreSQL, is the next step of issue 19.
///
/// One connection; transactions run one at a time on the log's own queue, which blocks on the
/// connection's futures (the format code above the boundary is synchronous). When the server
/// goes away, the transaction in flight fails with ``EventStoreError/Code/storageFailure``
/// (nothing it wrote is committed) and the next one connects again.
package final class PostgresLog: Sendable {
    package let location: PostgresLocation
    /// The connection; replaced by a new one when the server closed it (a restart, a network
    /// failure), at the start of the next transaction.
    private let connection: Mutex<PostgresConnection>
    let logger: Logger
    private let queue: DispatchQueue
    /// Appends through the storage boundary; `nil` for a log holding encrypted content, which
    /// PostgreSQL cannot write yet. Set once, by ``open(_:createIfMissing:configuration:logger:)``.
    private let writerBox = Mutex<LogWriter?>(nil)
    private var writer: LogWriter? { writerBox.withLock { $0 } }
    private let committerBox = Mutex<GroupCommitter<PreparedAppend, Result<AppendResult, EventStoreError>>?>(nil)

    /// The key of the transaction-scoped advisory lock that creating the schema takes, so that
    /// nodes started together create it once.
    static let schemaLock: Int64 = 0x7469_636b_6574_6c67  // "ticketlg"

    /// The configuration it was opened with: compression, clock and ids for commands, events
    /// per projection catch-up transaction, the subscriptions' poll interval.
    private let configuration: EventStore.Configuration
    /// Decodes events for reads and subscriptions, with the vocabulary seen so far.
    private let reader = LogReader()
    /// Wakes this process's subscribers: advanced by the notifications every node's appends
    /// send at commit (``LogWriter``), received on a connection of its own.
    private let notifier = CommitNotifier(head: 0)
    /// The task that listens for them, started by the first subscription.
    private let listener = Mutex<Task<Void, Never>?>(nil)

    private init(
        location: PostgresLocation, connection: PostgresConnection, logger: Logger,
        configuration: EventStore.Configuration
    ) {
        self.location = location
        self.configuration = configuration
        self.connection = Mutex(connection)
        self.logger = logger
        queue = DispatchQueue(label: "ticketlog.postgres.\(location.database)")
    }

    /// Connects and checks the database: a log this build reads, or an empty database, in which
    /// the log's tables are created when `createIfMissing` is set.
    ///
    /// - Throws: ``EventStoreError`` in one line naming the database and what was found:
    ///   ``EventStoreError/Code/storageFailure`` when the server cannot be reached or refuses the
    ///   user, password or database; ``EventStoreError/Code/unknownFormat`` for a database of
    ///   another format or version. Nothing is written then.
    ///
    /// With `catchUpProjections` (the default), projections new in this build or behind the head
    /// catch up before it returns; `verify` and copies leave them (a damaged log must still open
    /// to be verified).
    package static func open(
        _ location: PostgresLocation, createIfMissing: Bool = true, configuration: EventStore.Configuration = .init(),
        catchUpProjections: Bool = true, logger: Logger = .disabled
    ) async throws -> PostgresLog {
        let connection: PostgresConnection
        do {
            connection = try await connect(location, logger: logger).get()
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
        if location.tls == .disable && !location.isLoopback {
            logger.warning(
                "The connection to PostgreSQL is not encrypted: add ?sslmode=verify-full to the URL",
                metadata: ["ticketlog.database": "\(location)"])
        }
        let log = PostgresLog(location: location, connection: connection, logger: logger, configuration: configuration)
        do {
            let writer = try await log.transaction(readOnly: false) { session -> LogWriter? in
                try session.execute("SELECT pg_advisory_xact_lock(?)", [.integer(Self.schemaLock)])
                if try Schema.check(session, name: location.description, kind: "a PostgreSQL database") == .empty {
                    guard createIfMissing else {
                        throw EventStoreError(
                            code: .storageFailure, message: "no log at \(location): the database holds no tables")
                    }
                    try PostgresSchema.create(session)
                }
                try LogWriter.prepareProjections(session)
                guard try LogTables(session).meta("master_key_fingerprint").isNull else { return nil }
                return try LogWriter(configuration: configuration, session: session)
            }
            log.writerBox.withLock { $0 = writer }
            if catchUpProjections { try await log.catchUpProjections() }
            return log
        } catch {
            await log.close()
            throw error
        }
    }

    /// Opens the log, runs `body` with it and closes it, whether `body` returns or throws.
    package static func using<T>(
        _ location: PostgresLocation, createIfMissing: Bool = true, configuration: EventStore.Configuration = .init(),
        catchUpProjections: Bool = true, _ body: (PostgresLog) async throws -> T
    ) async throws -> T {
        let log = try await open(
            location, createIfMissing: createIfMissing, configuration: configuration,
            catchUpProjections: catchUpProjections)
        do {
            let result = try await body(log)
            await log.close()
            return result
        } catch {
            await log.close()
            throw error
        }
    }

    static func connect(_ location: PostgresLocation, logger: Logger) throws -> EventLoopFuture<PostgresConnection> {
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try tls(location))
        return PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 1, logger: logger)
    }

    /// The connection's TLS as the URL's `sslmode` and `sslrootcert` ask (libpq's meaning).
    static func tls(_ location: PostgresLocation) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch location.tls {
        case .disable: return .disable
        case .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        if let root = location.rootCertificate {
            guard FileManager.default.isReadableFile(atPath: root) else {
                throw EventStoreError(
                    code: .storageFailure,
                    message: "PostgreSQL at \(location): cannot read the certificate authority file \(root)")
            }
            configuration.trustRoots = .file(root)
        }
        do {
            return .require(try NIOSSLContext(configuration: configuration))
        } catch {
            throw EventStoreError(
                code: .storageFailure, message: "PostgreSQL at \(location): cannot set up TLS: \(error)", cause: error)
        }
    }

    /// A log released without ``close()`` (a caller that threw on the way) still closes its
    /// connection; the connection is kept until it has.
    deinit {
        listener.withLock { $0?.cancel() }
        let connection = connection.withLock { $0 }
        if !connection.isClosed { connection.close().whenComplete { _ in _ = connection } }
    }

    /// The server's version (`SHOW server_version`), for reports.
    package func serverVersion() async throws -> String {
        try await transaction(readOnly: true) { session in
            "PostgreSQL " + (try session.value("SHOW server_version").text ?? "?")
        }
    }

    /// Closes the connection and stops listening for notifications.
    package func close() async {
        if let listening = listener.withLock({ task in
            defer { task = nil }
            return task
        }) {
            listening.cancel()
            await listening.value
        }
        try? await connection.withLock { $0 }.close()
    }

    /// The open connection, a new one when the server closed the last (on the log's queue).
    private func openConnection() throws -> PostgresConnection {
        let current = connection.withLock { $0 }
        guard current.isClosed else { return current }
        logger.info("Reconnecting to PostgreSQL", metadata: ["ticketlog.database": "\(location)"])
        let fresh: PostgresConnection
        do {
            fresh = try Self.connect(location, logger: logger).wait()
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
        connection.withLock { $0 = fresh }
        return fresh
    }

    /// Runs `body` in one transaction on the log's queue: committed when it returns, rolled
    /// back when it throws. A read-only transaction is one snapshot (REPEATABLE READ).
    package func transaction<T: Sendable>(
        readOnly: Bool, _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        let begin = readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN"
                        var session = PostgresSession(
                            connection: try self.openConnection(), location: self.location, logger: self.logger)
                        do {
                            try session.execute(begin, [])
                        } catch  where session.connection.isClosed {
                            // The server closed the connection since the last transaction (a
                            // restart): nothing of this one was sent, so connect and begin again.
                            session = PostgresSession(
                                connection: try self.openConnection(), location: self.location, logger: self.logger)
                            try session.execute(begin, [])
                        }
                        do {
                            let result = try body(session)
                            try session.execute("COMMIT", [])
                            return result
                        } catch {
                            session.discardPending()
                            _ = try? session.execute("ROLLBACK", [])
                            throw error
                        }
                    })
            }
        }
    }

    /// Appends each batch atomically, in order (positions follow the order of `appends`); each
    /// succeeds or fails on its own, as ``EventStore/append(_:)`` does. Appends from concurrent
    /// callers share transactions (group commit: one commit, one head lock for all those
    /// waiting), up to ``EventStore/Configuration/maximumEventsPerTransaction`` events each.
    ///
    /// - Throws: ``EventStoreError/Code/storageFailure`` when a transaction cannot commit
    ///   (nothing of it is written), ``EventStoreError/Code/invalidEvent`` for a log holding
    ///   encrypted content (not written on PostgreSQL yet).
    package func append(_ appends: [StreamAppend]) async throws -> [Result<AppendResult, EventStoreError>] {
        guard let writer else { throw encrypted }
        let prepared = appends.map { append in
            Result { () throws(EventStoreError) -> PreparedAppend in
                do { return try writer.prepare(append) } catch let error as EventStoreError { throw error } catch {
                    throw EventStoreError.invalid("\(error)")
                }
            }
        }
        let valid = zip(appends, prepared).compactMap { append, preparation in
            (try? preparation.get()).map { (request: $0, weight: append.events.count) }
        }
        let written = try await committer(writer).submitAll(valid).map { try $0.get() }
        var results = written.makeIterator()
        return prepared.map { preparation in
            switch preparation {
            case .failure(let error): .failure(error)
            case .success: results.next()!
            }
        }
    }

    /// Coalesces appends into transactions: each answered with its own outcome, or the failure
    /// of its whole transaction.
    private func committer(_ writer: LogWriter) -> GroupCommitter<PreparedAppend, Result<AppendResult, EventStoreError>>
    {
        committerBox.withLock { box in
            if let committer = box { return committer }
            let committer = GroupCommitter<PreparedAppend, Result<AppendResult, EventStoreError>>(
                maximumBatchWeight: configuration.maximumEventsPerTransaction
            ) { [weak self] appends in
                guard let self else {
                    return appends.map { _ in
                        .failure(EventStoreError(code: .storageFailure, message: "the log was closed"))
                    }
                }
                do {
                    let written = try await self.transaction(readOnly: false) { session in
                        try writer.write(appends, session: session).results
                    }
                    return written.map { .success($0) }
                } catch {
                    return appends.map { _ in .failure(error) }
                }
            }
            box = committer
            return committer
        }
    }

    /// Reads `stream` as this transaction sees it, decides and appends in one transaction under
    /// the head, as ``EventStore/transact(_:_:)`` does on a file: what the decision read cannot
    /// change before its events are appended, on any node.
    @discardableResult
    package func transact(
        _ stream: StreamID, _ decide: @escaping @Sendable (TicketTransaction) throws -> [ProposedEvent]
    ) async throws -> CommandOutcome {
        guard let writer else { throw encrypted }
        let (events, result, version) = try await transaction(readOnly: false) { [reader] session in
            try writer.transact(stream, session: session, reader: reader, decide: decide)
        }
        guard let result else { return CommandOutcome(events: [], streamVersion: version) }
        let recorded: [RecordedEvent]
        if let fresh = EventStore.recorded(events, stream: stream, result) {
            recorded = fresh
        } else {
            recorded = try await read(from: result.positions.lowerBound, limit: events.count)
        }
        return CommandOutcome(
            events: recorded, streamVersion: result.streamVersion, wasAlreadyStored: result.wasAlreadyStored)
    }

    /// Checks `command` against `stream`'s state and appends its events, as
    /// ``EventStore/execute(_:on:by:expectedVersion:)`` does (the same decision).
    @discardableResult
    package func execute(
        _ command: TicketCommand, on stream: StreamID, by actor: Actor, expectedVersion: Int64? = nil
    ) async throws -> CommandOutcome {
        try await transact(
            stream,
            EventStore.decision(
                command, on: stream, by: actor, expectedVersion: expectedVersion, configuration: configuration))
    }

    /// The refusal to write a log holding encrypted content.
    private var encrypted: EventStoreError {
        EventStoreError.invalid(
            "\(location) holds encrypted content, which this build does not yet write on PostgreSQL")
    }

    /// Appends `events` to `stream`; see ``append(_:)``.
    @discardableResult
    package func append(_ events: [ProposedEvent], to stream: StreamID, expectedVersion: ExpectedVersion = .any)
        async throws -> AppendResult
    {
        try await append([StreamAppend(stream: stream, events: events, expectedVersion: expectedVersion)])[0].get()
    }

    /// Applies the events the projections have not seen yet, a few thousand per transaction, as
    /// ``EventStore/catchUpProjections(progress:)`` does for a file. Appends on other nodes may
    /// go on meanwhile: each step and each append take the head first.
    package func catchUpProjections(progress: (@Sendable (ProjectionProgress) -> Void)? = nil) async throws {
        let limit = configuration.projectionBatchSize
        while let step = try await transaction(
            readOnly: false,
            { [reader] session in try LogWriter.catchUpProjections(session, limit: limit, reader: reader) })
        {
            progress?(step)
        }
    }

    /// Every event from `position` on (inclusive): those stored, then each new one as any node
    /// commits it, in order, each once — ``EventStore/subscribe(from:)`` on PostgreSQL. New
    /// events are read by position; a notification (`LISTEN ticketlog_events`) only says when
    /// to read, so a lost one costs at most ``pollInterval``. While the server is away the
    /// subscription waits and reads again (logging a warning each time); it ends when the
    /// iterating task is cancelled, or throws for anything else a read fails with.
    package func subscribe(from position: Int64 = 1) -> EventSubscription {
        listener.withLock { task in
            guard task == nil else { return }
            task = Task { [location, logger, notifier] in
                await Self.listen(location: location, logger: logger, notifier: notifier)
            }
        }
        return EventSubscription(source: self, start: max(1, position))
    }

    /// Holds a connection listening on `ticketlog_events` until cancelled, connecting again a
    /// second after it is lost; after each (re)connection the head is read once, so what was
    /// committed while nobody listened wakes the subscribers too.
    private static func listen(location: PostgresLocation, logger: Logger, notifier: CommitNotifier) async {
        while !Task.isCancelled {
            do {
                let connection = try await connect(location, logger: logger).get()
                // A connection the server dropped does not always end the notifications, and a
                // statement sent as it closed may never be answered (postgres-nio#487): so the
                // listening runs in a task of its own that is watched, and left behind — not
                // waited for — once its connection closes.
                let ended = Mutex<(any Error)?>(nil)
                let finished = Mutex(false)
                let listening = Task {
                    do {
                        try await connection.listen(on: "ticketlog_events") { notifications in
                            let head = try await connection.query(
                                "SELECT integer FROM meta WHERE key = 'head_position'", logger: logger)
                            for try await position in head.decode(Int64.self) { notifier.advance(to: position) }
                            for try await notification in notifications {
                                if let position = Int64(notification.payload) { notifier.advance(to: position) }
                            }
                        }
                    } catch {
                        ended.withLock { $0 = error }
                    }
                    finished.withLock { $0 = true }
                }
                while !connection.isClosed, !finished.withLock({ $0 }), !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                }
                listening.cancel()
                if !Task.isCancelled {
                    logger.warning(
                        "Listening for new events on PostgreSQL stopped; connecting again",
                        metadata: [
                            "ticketlog.database": "\(location)",
                            "ticketlog.error": "\(ended.withLock { $0 }.map { "\($0)" } ?? "the connection closed")",
                        ])
                }
                // Not waited for either: closing waits for the statements sent before it.
                Task { try? await connection.close() }
            } catch {
                logger.warning(
                    "Cannot listen for new events on PostgreSQL; trying again",
                    metadata: [
                        "ticketlog.database": "\(location)",
                        "ticketlog.error": "\(PostgresErrors.translate(error, location: location).message)",
                    ])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Up to `limit` events from `position` on (inclusive), in position order.
    package func read(from position: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await transaction(readOnly: true) { [reader] session in
            try reader.events(session, from: position, limit: limit)
        }
    }

    /// Runs `body` over the projections' read side in one read-only snapshot (messages' texts
    /// decoded by the log's reader; sealed content stays sealed).
    private func reading<T: Sendable>(_ body: @escaping @Sendable (TicketReads) throws -> T) async throws -> T {
        try await transaction(readOnly: true) { [reader] session in try body(TicketReads(session, reader: reader)) }
    }

    /// The summary of `stream`; `nil` when it has no events (``EventStore/ticketSummary(_:)``).
    package func ticketSummary(_ stream: StreamID) async throws -> TicketSummary? {
        try await reading { try $0.summary(stream) }
    }

    /// The tickets matching `filter`, most recently active first (``EventStore/tickets(_:limit:)``).
    package func tickets(_ filter: TicketFilter = .all, limit: Int = 1_000) async throws -> [TicketSummary] {
        try await reading { try $0.tickets(filter, limit: limit) }
    }

    /// The members of `stream`'s channel now, in joining order.
    package func members(of stream: StreamID) async throws -> [TicketState.Member] {
        try await reading { try $0.members(of: stream) }
    }

    /// Who was in `stream`'s channel when `messageID` was posted; `nil` when there is no such message.
    package func membersWhenPosted(_ messageID: String, in stream: StreamID) async throws -> [TicketState.Member]? {
        try await reading { try $0.membersWhenPosted(messageID, in: stream) }
    }

    /// A page of `stream`'s messages with edits and deletes applied (``EventStore/messages(of:from:direction:limit:includeDeleted:)``).
    package func messages(
        of stream: StreamID, from cursor: MessageCursor? = nil, direction: ReadDirection = .forwards,
        limit: Int = 50, includeDeleted: Bool = true
    ) async throws -> [TicketState.Message] {
        try await reading {
            try $0.messages(
                of: stream, from: cursor, direction: direction, limit: limit, includeDeleted: includeDeleted)
        }
    }

    /// Recomputes the chain over the whole log, as ``EventStore/verify(anchor:progress:)`` does
    /// for a file (the same code, above the storage boundary).
    package func verify(
        anchor: ChainAnchor? = nil, progress: (@Sendable (VerificationProgress) -> Void)? = nil
    ) async throws -> VerificationReport {
        try await transaction(readOnly: true) { session in
            try LogVerifier.verify(session, anchor: anchor, progress: progress)
        }
    }

    /// The head the log records: its newest position and that event's chain hash.
    package func head() async throws -> (position: Int64, hash: [UInt8]) {
        try await transaction(readOnly: true) { session in
            let meta = LogTables(session)
            return (try meta.meta("head_position").integer ?? 0, try meta.meta("head_hash").blob ?? [])
        }
    }

    /// Copies the log of an SQLite file into this database, which must hold no events: one
    /// snapshot of the file, one transaction here. The projections are left to
    /// ``catchUpProjections(progress:)`` (or the next opening).
    package func copy(
        from store: EventStore, progress: (@Sendable (_ table: String, _ rows: Int) -> Void)? = nil
    ) async throws -> LogCopy.Summary {
        try await transaction(readOnly: false) { target in
            let summary = try store.withReadSession { source in
                try LogCopy.copy(from: source, to: target, progress: progress)
            }
            try self.writer?.reloadDictionaries(target)
            return summary
        }
    }

    /// Copies this log into a new SQLite file at `path` (its projections are built when the
    /// file is first opened).
    package func copy(
        toFile path: String, progress: (@Sendable (_ table: String, _ rows: Int) -> Void)? = nil
    ) async throws -> LogCopy.Summary {
        try await transaction(readOnly: true) { source in
            try EventStore.createLog(at: path) { target in
                try LogCopy.copy(from: source, to: target, progress: progress)
            }
        }
    }
}

extension PostgresLog: EventSource {
    /// A subscription's read: while the server is away, no events (the subscription waits and
    /// reads again) rather than an error.
    package func events(from position: Int64, limit: Int) async throws -> [RecordedEvent] {
        do {
            return try await read(from: position, limit: limit)
        } catch  where PostgresErrors.isUnavailable(error) {
            logger.warning(
                "A subscription cannot read from PostgreSQL; it waits and reads again",
                metadata: ["ticketlog.database": "\(location)", "ticketlog.error": "\(error)"])
            return []
        }
    }

    package func waitForEvents(beyond position: Int64, timeout: Duration) async {
        await notifier.wait(beyond: position, timeout: timeout)
    }

    /// How long a subscriber waits for a notification before it reads again regardless.
    package var pollInterval: Duration { configuration.subscriptionPollInterval }
}
