import Foundation
import GRDB

extension EventStore {
    /// Appends `events` to `stream`, atomically: all of them or none.
    ///
    /// - Parameters:
    ///   - events: the events, in the order they get positions and versions (at most
    ///     ``Configuration/maximumEventsPerAppend``).
    ///   - stream: the ticket's stream; created by its first append.
    ///   - expectedVersion: what the stream must be at for the append to happen.
    /// - Returns: the positions the events were stored at and the stream's new version.
    ///   When every event id is already stored with the same content (a retry), nothing is
    ///   written and the original positions come back with ``AppendResult/wasAlreadyStored``.
    /// - Throws: ``EventStoreError``: ``EventStoreError/Code/versionConflict`` naming the actual
    ///   version; ``EventStoreError/Code/duplicateEventID`` when an id is stored with other
    ///   content; ``EventStoreError/Code/invalidEvent`` for an empty, oversized or
    ///   self-contradicting batch; ``EventStoreError/Code/storageFailure`` when SQLite fails.
    ///   On any error nothing is appended.
    @discardableResult
    public func append(
        _ events: [ProposedEvent], to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) async throws -> AppendResult {
        let prepared = try prepare(events, stream: stream, expectedVersion: expectedVersion)
        return try await committer.submit(.prepared(prepared), weight: events.count)
    }

    /// Appends one event; see ``append(_:to:expectedVersion:)-([ProposedEvent],_,_)``.
    @discardableResult
    public func append(
        _ event: ProposedEvent, to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) async throws -> AppendResult {
        try await append([event], to: stream, expectedVersion: expectedVersion)
    }

    /// Appends several batches, in order, sharing transactions with each other and with
    /// concurrent appends. Each is atomic on its own and succeeds or fails on its own, exactly as
    /// if passed to ``append(_:to:expectedVersion:)-([ProposedEvent],_,_)`` one after the other, but without waiting
    /// for a commit between them. Their positions follow the order of `appends`.
    ///
    /// What the call encodes (each event's canonical JSON and stored body) is kept until it
    /// returns, and freed by the calling task rather than by the writer: pass thousands of
    /// events a call, as `import` does, not a whole log.
    public func append(_ appends: [StreamAppend]) async -> [Result<AppendResult, EventStoreError>] {
        if shared != nil {
            // LogWriter reads ahead for the whole group: it needs every append prepared.
            let prepared = appends.map { item in
                Result { () throws(EventStoreError) in
                    do {
                        return try prepare(item.events, stream: item.stream, expectedVersion: item.expectedVersion)
                    } catch { throw Self.storeError(error) }
                }
            }
            let submitted = prepared.compactMap { try? $0.get() }.map {
                (request: QueuedAppend.prepared($0), weight: $0.events.count)
            }
            var results = await committer.submitAll(submitted).makeIterator()
            return prepared.map { preparation in
                switch preparation {
                case .failure(let error): .failure(error)
                case .success: results.next()!.mapError(Self.storeError)
                }
            }
        }
        // Every append is queued at once, in order, as a promise; then each is prepared and its
        // promise fulfilled. The writer starts on the first while this task encodes (and seals)
        // the next, in the same transaction: on two cores the halves overlap instead of taking
        // turns.
        let promises = appends.map { _ in PromisedAppend() }
        let queued = committer.enqueueAll(
            zip(appends, promises).map { (request: .promised($1), weight: max(1, $0.events.count)) })
        for (item, promise) in zip(appends, promises) {
            do {
                promise.fulfil(
                    .success(try prepare(item.events, stream: item.stream, expectedVersion: item.expectedVersion)))
            } catch {
                promise.fulfil(.failure(Self.storeError(error)))
            }
        }
        let results = await queued.results()
        // The prepared appends are freed here, by the task that made them, not by the writer
        // when it drops its copies: freeing another thread's allocations took ~6% of the
        // writer's time in an events-only append (perf).
        withExtendedLifetime(promises) {}
        return results.map { $0.mapError(Self.storeError) }
    }

    private static func storeError(_ error: any Error) -> EventStoreError {
        error as? EventStoreError ?? .storage("the append failed", cause: error)
    }

    func prepare(_ events: [ProposedEvent], stream: StreamID, expectedVersion: ExpectedVersion) throws -> PreparedAppend
    {
        if let shared {
            return try sharedWriter(shared).prepare(
                StreamAppend(stream: stream, events: events, expectedVersion: expectedVersion))
        }
        return try Self.prepare(
            events, stream: stream, expectedVersion: expectedVersion, configuration: configuration,
            dictionary: dictionaries.current, keyring: keyring)
    }

    /// Validates and encodes an append for any writer: each event's personal fields sealed with
    /// `keyring` (none without a master key), its canonical body split and compressed with
    /// `dictionary`.
    static func prepare(
        _ events: [ProposedEvent], stream: StreamID, expectedVersion: ExpectedVersion,
        configuration: Configuration, dictionary: LZ4Dictionary?, keyring: ContentKeyring?
    ) throws -> PreparedAppend {
        guard !events.isEmpty else { throw EventStoreError.invalid("an append needs at least one event") }
        guard events.count <= configuration.maximumEventsPerAppend else {
            throw EventStoreError.invalid(
                "an append may carry at most \(configuration.maximumEventsPerAppend) events; this one has \(events.count)"
            )
        }
        if case .exact(let version) = expectedVersion, version < 0 {
            throw EventStoreError.invalid("expected version \(version) is negative")
        }
        var seen = Set<UUID>()
        for event in events where !seen.insert(event.id).inserted {
            throw EventStoreError.invalid("event id \(event.id.uuidString.lowercased()) appears twice in one append")
        }
        let recordedAt = configuration.clock()
        // Read before sealing: the writer compares it with the keyring's when it writes.
        let generation = keyring?.erasureGeneration ?? 0
        let encoded = try events.map { proposed in
            let (event, newKeys, sealedWith, fields) =
                if let keyring {
                    try sealed(proposed, stream: stream, keyring: keyring)
                } else {
                    (proposed, [ContentKey](), String?.none, [SealedField.Sealed]())
                }
            let canonical = try canonicalBody(
                of: event, stream: stream, recordedAt: recordedAt, maximumSize: configuration.maximumEventSize)
            guard let (stored, line) = StoredBody.split(canonical) else {
                throw EventStoreError.invalid("event \(event.id.uuidString.lowercased()) has no canonical JSON object")
            }
            let (codec, blob) =
                if keyring != nil, let packed = SealedPacking.pack(stored, known: fields) {
                    BodyCodec.encodeSealed(packed, dictionary: dictionary)
                } else {
                    BodyCodec.encode(stored, dictionary: dictionary)
                }
            return PreparedAppend.Event(
                proposed: proposed, canonical: canonical, codec: codec, blob: blob,
                leaf: StoredBody.LeafHasher(canonical: canonical, insertion: line), newKeys: newKeys,
                sealedWith: sealedWith)
        }
        return PreparedAppend(
            stream: stream, expectedVersion: expectedVersion, recordedAt: recordedAt, events: encoded,
            keyringGeneration: generation)
    }

    /// The event's canonical body, or ``EventStoreError/Code/invalidEvent`` when it cannot be
    /// encoded or is larger than `maximumEventSize`.
    func canonicalBody(of event: ProposedEvent, stream: StreamID, recordedAt: Timestamp) throws -> [UInt8] {
        try Self.canonicalBody(
            of: event, stream: stream, recordedAt: recordedAt, maximumSize: configuration.maximumEventSize)
    }

    static func canonicalBody(of event: ProposedEvent, stream: StreamID, recordedAt: Timestamp, maximumSize: Int)
        throws -> [UInt8]
    {
        let canonical: [UInt8]
        do {
            let body = EventBody(event, stream: stream, recordedAt: recordedAt)
            canonical = try CanonicalWriter.encode(body) ?? CanonicalJSON.encode(body)
        } catch {
            throw EventStoreError(
                code: .invalidEvent, message: "event \(event.id.uuidString.lowercased()) cannot be encoded",
                cause: error)
        }
        guard canonical.count <= maximumSize else {
            throw EventStoreError.invalid(
                "event \(event.id.uuidString.lowercased()) is \(canonical.count) bytes; the limit is \(maximumSize)"
            )
        }
        return canonical
    }

    /// Writes one group of appends in one transaction; each append in its own savepoint so that
    /// one rejected append does not take the others down. Called only by the group committer's
    /// drain, which runs on the store's ``CommitExecutor``: on a file it waits for the writer
    /// synchronously, which would block a thread of Swift's shared pool anywhere else.
    func commit(_ queued: [QueuedAppend]) async -> [Result<AppendResult, any Error>] {
        if let shared {
            // Only prepared appends reach a shared database's writer (``append(_:)-([StreamAppend])``
            // prepares a call first there): nothing below waits.
            var results = [Result<AppendResult, any Error>?](repeating: nil, count: queued.count)
            var requests: [PreparedAppend] = []
            for (index, append) in queued.enumerated() {
                switch append.waitPrepared() {
                case .success(let request): requests.append(request)
                case .failure(let error): results[index] = .failure(error)
                }
            }
            var written = await commit(requests, shared).makeIterator()
            return results.map { $0 ?? written.next()! }
        }
        let outcome: (results: [Result<AppendResult, any Error>], head: Int64, keysWritten: [String])
        do {
            // Synchronously: this runs on the store's commit thread (``CommitExecutor``), which
            // is there to wait for the writer, so the transaction runs on it without a hop to
            // the writer's queue and back between two commits.
            outcome = try writeSynchronously { db in
                // Another process's erasures since this one last looked: their keys are not
                // sealed with again (below) nor opened.
                try self.keyring?.refresh(SQLiteSession(db), name: self.path)
                var head = try ChainHead.fetch(db)
                let start = head.position
                var keys = RowKeys()
                let sql = SQLiteSession(db)
                let live = self.configuration.inlineProjections ? try Self.liveProjections(sql, head: start) : []
                var session = ProjectionSession(live)
                let insert = try Self.eventInsert(db)
                // The streams this transaction touched, by name: key and version so far. Their
                // `streams` rows are updated once, at the end, instead of once per append.
                var streams: [StreamID: StreamRow] = [:]
                var results: [Result<AppendResult, any Error>] = []
                results.reserveCapacity(queued.count)
                var keysWritten: [String] = []
                for append in queued {
                    try Self.requireOpenTransaction(db)
                    // A promised append is waited for here: its caller prepares it meanwhile.
                    var request: PreparedAppend
                    switch append.waitPrepared() {
                    case .success(let prepared): request = prepared
                    case .failure(let error):
                        results.append(.failure(error))
                        continue
                    }
                    // Actor and type keys are made here, outside the append's savepoint, so that
                    // a refused append cannot roll back a key the vocabulary has cached.
                    try self.makeKeys(for: request.events, in: &keys, db)
                    var local = head
                    var row = streams[request.stream]
                    // What the projections keep in memory rolls back with the append.
                    session.beginAppend()
                    do {
                        if let keyring = self.keyring,
                            keyring.holdsErasedKey(request.events, sealedAt: request.keyringGeneration)
                        {
                            // Sealed with a key an erasure destroyed since: sealed again under a
                            // live one (the append comes after the erasure in the log).
                            request = try self.prepare(
                                request.events.map(\.proposed), stream: request.stream,
                                expectedVersion: request.expectedVersion)
                        }
                        if row == nil { row = try Self.streamRow(request.stream, db: db) }
                        do {
                            if let decide = request.decide {
                                // The decision reads the projections: what it may read of
                                // what this transaction kept in memory for them is written
                                // first (not the search documents: no decision searches).
                                try session.finishForDecision(sql)
                                try self.decideAndWrite(
                                    &request, decide, db: db, insert: insert, head: &local, stream: &row,
                                    keys: &keys, projections: &session)
                            } else if request.events.count == 1 && row != nil {
                                // One event into an existing stream: the only write that can be
                                // refused is the event's insert, and SQLite undoes a refused
                                // statement by itself. No savepoint (its journal copies every
                                // page the append touches).
                                try self.write(
                                    request, db: db, insert: insert, head: &local, stream: &row, keys: keys,
                                    projections: &session)
                            } else {
                                try Self.inSavepoint(db) {
                                    try self.write(
                                        request, db: db, insert: insert, head: &local, stream: &row, keys: keys,
                                        projections: &session)
                                }
                            }
                        } catch let conflict as StoredIDConflict {
                            session.rollBackAppend()
                            // An event id is stored already: a retry (its original result) or a clash.
                            guard let stored = try self.storedResult(of: request, db: db, streams: streams) else {
                                throw conflict.cause
                            }
                            results.append(.success(stored))
                            continue
                        }
                        head = local
                        streams[request.stream] = row
                        for event in request.events { keysWritten += event.newKeys.map(\.id) }
                        var result = AppendResult(
                            positions: (head.position - Int64(request.events.count) + 1)...head.position,
                            streamVersion: row!.version, wasAlreadyStored: false)
                        result.recordedAt = request.recordedAt
                        results.append(.success(result))
                    } catch let error as EventStoreError {
                        session.rollBackAppend()
                        results.append(.failure(error))
                    } catch let nothing as DecidedNothing {
                        results.append(.failure(nothing))
                    } catch let failure as TransactFailure {
                        results.append(.failure(failure))
                    }
                }
                try Self.requireOpenTransaction(db)
                if head.position != start {
                    let update = try db.cachedStatement(sql: "UPDATE streams SET version = ? WHERE key = ?")
                    for row in streams.values where row.changed {
                        try update.execute(arguments: [row.version, row.key])
                    }
                    do {
                        try session.finish(sql)
                    } catch {
                        throw ProjectionFailure(cause: error)
                    }
                    try head.save(db)
                    try ProjectionCheckpoints.save(live, position: head.position, sql)
                }
                return (results, head.position, keysWritten)
            }
        } catch {
            vocabulary.reset()
            let failure = EventStoreError.storage("the append could not be committed", cause: error)
            logger.error(
                "Append transaction failed",
                metadata: CommitCallers.metadata.merging(["ticketlog.error": "\(error)"]) { $1 })
            return queued.map { _ in .failure(failure) }
        }
        keyring?.written(outcome.keysWritten)
        notifier.advance(to: outcome.head)
        await trainFirstDictionaryIfDue(head: outcome.head)
        return outcome.results
    }

    /// The writer's transaction, waited for on the calling thread (from an async function the
    /// compiler would pick the overload that suspends). Its `BEGIN IMMEDIATE` and `COMMIT` are
    /// statements prepared once per connection: GRDB's `write` prepares both at every
    /// transaction (~3.6% of the writer's samples under a `POST …/messages` load). A failure
    /// rolls back through GRDB, which knows when SQLite already did.
    private func writeSynchronously<T>(_ updates: (Database) throws -> T) throws -> T {
        try writer.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
            do {
                let result = try updates(db)
                try Self.requireOpenTransaction(db)
                try db.cachedStatement(sql: "COMMIT").execute()
                return result
            } catch {
                try? db.rollback()
                throw error
            }
        }
    }

    /// Throws when SQLite rolled the writer's transaction back by itself — a full disk, an I/O
    /// error, an interrupt — in a statement whose failure one append took as its own (a decision's
    /// read or write): any statement after that would commit alone, outside the transaction.
    /// GRDB checks so before its own statements inside its transaction blocks; the writer's are
    /// mostly SQLite's C API, so the commit checks before each append, before the transaction's
    /// closing writes and before `COMMIT`.
    static func requireOpenTransaction(_ db: Database) throws {
        guard db.isInsideTransaction else {
            throw DatabaseError(
                resultCode: .SQLITE_ABORT,
                message: "SQLite rolled the transaction back after a failed statement; nothing of it is kept")
        }
    }

    /// Writes one group of appends in one transaction on a shared database (``LogWriter``: the
    /// head locked first, so writers on every node take positions in commit order).
    private func commit(_ requests: [PreparedAppend], _ shared: SharedStorage) async
        -> [Result<AppendResult, any Error>]
    {
        do {
            let writer = try sharedWriter(shared)
            let (results, head, keysWritten) = try await shared.database.transaction(readOnly: false) { session in
                try writer.write(requests, session: session)
            }
            keyring?.written(keysWritten)
            notifier.advance(to: head)
            await trainFirstDictionaryIfDue(head: head)
            return results
        } catch {
            let failure = Self.mapStorageError(error, "the append could not be committed")
            logger.error(
                "Append transaction failed",
                metadata: CommitCallers.metadata.merging(["ticketlog.error": "\(error)"]) { $1 })
            return requests.map { _ in .failure(failure) }
        }
    }

    /// The writer of a log on a shared database.
    ///
    /// - Throws: ``EventStoreError/Code/masterKey`` for a log holding encrypted content opened
    ///   without its master key (read only).
    func sharedWriter(_ shared: SharedStorage) throws(EventStoreError) -> LogWriter {
        guard let writer = shared.writer else {
            throw EventStoreError(
                code: .masterKey,
                message:
                    "\(path) holds encrypted content and was opened without its master key (TICKETLOG_MASTER_KEY or a key file): it is read, not written, here"
            )
        }
        return writer
    }

    static func streamRow(_ stream: StreamID, db: Database) throws -> StreamRow? {
        guard
            let row = try SQLiteSession(db).row(
                "SELECT key, version FROM streams WHERE name = ?", [.text(stream.rawValue)]),
            let key = row[0].integer, let version = row[1].integer
        else { return nil }
        return StreamRow(key: key, version: version)
    }

    /// Runs `body` in a savepoint (rolled back when it throws): a ``LazySavepoint`` opened at once.
    static func inSavepoint(_ db: Database, _ body: () throws -> Void) throws {
        let savepoint = LazySavepoint(db)
        try savepoint.open()
        do {
            try body()
        } catch {
            try savepoint.rollBack()
            throw error
        }
        try savepoint.release()
    }

    /// A savepoint on the writer's connection, opened when first needed (``decideAndWrite``) or
    /// at once (``inSavepoint(_:_:)``). Its three statements are prepared once per connection:
    /// GRDB's `inSavepoint` prepares its statements at every call, ~4% of the writer's samples
    /// when every `POST …/messages` decided in one.
    final class LazySavepoint {
        private let db: Database
        private(set) var isOpen = false

        init(_ db: Database) {
            self.db = db
        }

        func open() throws {
            guard !isOpen else { return }
            try db.cachedStatement(sql: "SAVEPOINT append").execute()
            isOpen = true
        }

        /// Keeps what was written since it opened.
        func release() throws {
            guard isOpen else { return }
            isOpen = false
            try db.cachedStatement(sql: "RELEASE SAVEPOINT append").execute()
        }

        /// Takes back what was written since it opened (nothing to do when SQLite answered a
        /// failure by rolling back the whole transaction, which took the savepoint with it).
        func rollBack() throws {
            guard isOpen else { return }
            isOpen = false
            guard db.isInsideTransaction else { return }
            try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT append").execute()
            try db.cachedStatement(sql: "RELEASE SAVEPOINT append").execute()
        }
    }

    /// A stream's row as a transaction sees it.
    struct StreamRow {
        var key: Int64
        var version: Int64
        /// Whether `version` moved in this transaction (its row needs the update).
        var changed = false
    }

    /// The actor and type keys of a transaction's events.
    struct RowKeys {
        var actors: [Actor: Int64] = [:]
        var types: [String: Int64] = [:]
    }

    /// Adds the keys of `events`' actors and types to `keys`, making those the file lacks.
    private func makeKeys(for events: [PreparedAppend.Event], in keys: inout RowKeys, _ db: Database) throws {
        for index in events.indices {
            let actor = events[index].proposed.actor
            if keys.actors[actor] == nil { keys.actors[actor] = try vocabulary.actorKey(actor, db) }
            let type = events[index].proposed.type.rawValue
            if keys.types[type] == nil { keys.types[type] = try vocabulary.typeKey(type, db) }
        }
    }

    /// The events' insert, looked up once per transaction rather than once per append (the
    /// statement cache hashes the whole text).
    private static func eventInsert(_ db: Database) throws -> RawStatement {
        try RawStatement(
            db,
            sql: """
                INSERT INTO events(position, stream, version, id, type, actor, occurred_at, recorded_at, codec, body, chain_check)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
    }

    /// A projection could not be applied; fails the whole transaction.
    struct ProjectionFailure: Error {
        var cause: any Error
    }

    /// An insert hit the unique index on event ids; the append is looked at as a possible retry.
    struct StoredIDConflict: Error {
        var cause: any Error
    }

    /// Writes one append: its events, chained, and their projections. `stream` is the stream's
    /// row as the transaction has it so far (`nil`: the stream does not exist yet), moved to the
    /// new version. Nothing is written before the version check.
    private func write(
        _ request: PreparedAppend, db: Database, insert: RawStatement, head: inout ChainHead, stream: inout StreamRow?,
        keys: RowKeys, projections: inout ProjectionSession
    ) throws {
        let current = stream?.version ?? 0
        guard request.expectedVersion.accepts(current) else {
            // A retry of an append that went through is answered with its result, whatever
            // the version is now.
            throw StoredIDConflict(
                cause: EventStoreError.versionConflict(request.stream, at: current, expected: request.expectedVersion))
        }
        if stream == nil {
            try db.cachedStatement(sql: "INSERT INTO streams(name, version) VALUES (?, 0)")
                .execute(arguments: [request.stream.rawValue])
            stream = StreamRow(key: db.lastInsertedRowID, version: 0)
        }
        let streamKey = stream!.key
        let recordedAt = request.recordedAt.microsecondsSinceEpoch
        try writeContentKeys(of: request.events, db)
        // Whether an erasure since the append was sealed may have destroyed one of its keys.
        let checksErasedKeys = keyring?.mayHoldErasedKeys(sealedAt: request.keyringGeneration) ?? false
        var version = current
        // By index: a `for … in` copies each event (a dozen retains and releases of its
        // fields, on the writer's thread).
        let events = request.events
        for index in events.indices {
            version += 1
            let position = head.position + 1
            let hash = HashChain.link(
                previous: head.hash, position: position, version: version, body: events[index].canonical)
            do {
                insert.bind(1, position)
                insert.bind(2, streamKey)
                insert.bind(3, version)
                withUnsafeBytes(of: events[index].proposed.id.uuid) { insert.bind(4, blob: $0) }
                insert.bind(5, keys.types[events[index].proposed.type.rawValue]!)
                insert.bind(6, keys.actors[events[index].proposed.actor]!)
                insert.bind(7, events[index].proposed.occurredAt.microsecondsSinceEpoch)
                insert.bind(8, recordedAt)
                insert.bind(9, events[index].codec)
                hash.withUnsafeBytes {
                    insert.bind(11, blob: UnsafeRawBufferPointer(rebasing: $0.prefix(Schema.chainCheckSize)))
                }
                // The body, the one large value, is not copied by SQLite.
                try insert.run(binding: 10, borrowedBlob: events[index].blob)
            } catch let error as DatabaseError
                where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE
                && error.message?.contains("events.id") == true
            {
                throw StoredIDConflict(cause: error)
            }
            try MerkleNodes.append(
                events[index].leaf.leafHash(of: events[index].canonical, position: position, version: version),
                to: &head.tree, db)
            head.position = position
            head.hash = hash
            if !projections.isEmpty {
                var recorded = EventBody(events[index].proposed, stream: request.stream, recordedAt: request.recordedAt)
                    .recorded(position: position, version: version)
                if checksErasedKeys, let key = events[index].sealedWith, keyring?.isErased(key) == true {
                    // Sealed under a key an erasure destroyed after this append was prepared:
                    // the projections see it as every later read will, erased.
                    recorded.payload = recorded.payload.mappingPersonalFields { _, _ in "" }
                    recorded.contentErased = true
                }
                let projected = ProjectedEvent(event: recorded, streamKey: streamKey)
                do {
                    try projections.apply(projected, SQLiteSession(db))
                } catch {
                    // Not the append's fault: the whole transaction fails (no half-applied append
                    // survives, with or without a savepoint).
                    throw ProjectionFailure(cause: error)
                }
            }
        }
        stream = StreamRow(key: streamKey, version: version, changed: true)
    }

    /// A decided append (``PreparedAppend/decide``): the decision, what it writes (sync marks)
    /// and its events kept together or not at all. A decision of no events keeps what it wrote
    /// and throws ``DecidedNothing``.
    ///
    /// The savepoint that takes them back is opened only when something needs it: before the
    /// decision's first write through its session (at once for a decision that writes around it,
    /// an erasure's), and before the events when the plain append would need it (more than one
    /// event, or a new stream). A command's decision only reads and decides one event into its
    /// ticket: no `SAVEPOINT`, no journal of the pages its event touches.
    private func decideAndWrite(
        _ request: inout PreparedAppend,
        _ decide: (any SQLSession, Int64) throws -> [ProposedEvent], db: Database, insert: RawStatement,
        head: inout ChainHead, stream: inout StreamRow?, keys: inout RowKeys, projections: inout ProjectionSession
    ) throws {
        let version = stream?.version ?? 0
        var decidedKeys = keys
        let savepoint = LazySavepoint(db)
        do {
            if !request.decisionWritesThroughSession { try savepoint.open() }
            let events = try decide(SQLiteSession(db, savepoint: savepoint), version)
            request = try self.prepare(
                events, stream: request.stream, expectedVersion: version == 0 ? .noStream : .exact(version))
            // As for a plain append: one event into a stream that exists can be refused only by
            // its own insert, which SQLite undoes by itself.
            if request.events.count != 1 || stream == nil { try savepoint.open() }
            try self.makeKeys(for: request.events, in: &decidedKeys, db)
            try self.write(
                request, db: db, insert: insert, head: &head, stream: &stream, keys: decidedKeys,
                projections: &projections)
            try savepoint.release()
        } catch let nothing as DecidedNothing {
            try savepoint.release()
            throw nothing
        } catch {
            try savepoint.rollBack()
            // Keys made inside the rolled-back savepoint are gone from the file.
            vocabulary.reset()
            throw error
        }
        keys = decidedKeys
    }

    /// When the append's event ids are already stored: its original result, if it is the same
    /// append; an error if the ids are stored with other content. `nil` when none is stored.
    private func storedResult(of request: PreparedAppend, db: Database, streams: [StreamID: StreamRow]) throws
        -> AppendResult?
    {
        let lookup = "SELECT \(EventStore.eventColumns) FROM events WHERE id = ?"
        var found: [(event: PreparedAppend.Event, record: RecordedEvent)] = []
        for event in request.events {
            guard
                let record = try decodeRecords(db, sql: lookup, [.blob(Array(event.proposed.id.databaseBytes))]).first
            else { continue }
            found.append((event, record))
        }
        guard let firstFound = found.first else { return nil }
        guard found.count == request.events.count else {
            throw EventStoreError.partlyStored(firstFound.event.proposed.id, at: firstFound.record.position)
        }
        for (event, record) in found where record.proposed != event.proposed || record.stream != request.stream {
            throw EventStoreError.storedWithOtherContent(event.proposed.id, at: record.position)
        }
        let positions = found.map(\.record.position)
        let version =
            try streams[request.stream]?.version ?? Int64.fetchOne(
                db, sql: "SELECT version FROM streams WHERE name = ?", arguments: [request.stream.rawValue]) ?? 0
        return AppendResult(
            positions: positions.min()!...positions.max()!, streamVersion: version, wasAlreadyStored: true)
    }
}

/// The last link of the chain (the newest position and its hash) and the right edge of the
/// Merkle tree over the events up to it.
struct ChainHead: Sendable {
    var position: Int64
    var hash: [UInt8]
    var tree: MerkleEdge

    /// The head as the last commit recorded it in `meta` (rows keep only a prefix of each hash).
    static func fetch(_ db: Database) throws -> ChainHead {
        try fetch(SQLiteSession(db))
    }

    static func fetch(_ session: any SQLSession) throws -> ChainHead {
        // One statement for the three rows (a round trip each on PostgreSQL).
        let meta = try LogTables(session).meta(["head_position", "head_hash", "tree_edge"])
        let (position, hash) = link(meta)
        guard let tree = try MerkleNodes.edge(meta["tree_edge"] ?? .null) else {
            throw EventStoreError.corrupt(
                "the log has no Merkle tree yet: open it for writing once to build it", position: nil)
        }
        guard tree.size == position else {
            throw EventStoreError.corrupt(
                "the log's Merkle tree covers \(tree.size) events but its head is at position \(position)",
                position: position)
        }
        return ChainHead(position: position, hash: hash, tree: tree)
    }

    /// The newest position as the last commit recorded it.
    static func position(_ db: Database) throws -> Int64 {
        try position(SQLiteSession(db))
    }

    static func position(_ session: any SQLSession) throws -> Int64 {
        try LogTables(session).meta("head_position").integer ?? 0
    }

    /// The chain's head as the last commit recorded it: its position and full hash.
    static func link(_ db: Database) throws -> (position: Int64, hash: [UInt8]) {
        try link(SQLiteSession(db))
    }

    static func link(_ session: any SQLSession) throws -> (position: Int64, hash: [UInt8]) {
        link(try LogTables(session).meta(["head_position", "head_hash"]))
    }

    /// The link in meta rows read (an empty log: position 0, the genesis hash).
    private static func link(_ meta: [String: SQLValue]) -> (position: Int64, hash: [UInt8]) {
        (meta["head_position"]?.integer ?? 0, meta["head_hash"]?.blob ?? HashChain.genesis)
    }

    func save(_ db: Database) throws {
        try save(SQLiteSession(db))
    }

    /// Records the head in `meta`, committed with the events it ends at.
    func save(_ session: any SQLSession) throws {
        try LogTables(session).setMeta([
            ("head_position", .integer(position)), ("head_hash", .blob(hash)), ("tree_edge", .blob(tree.bytes)),
        ])
    }
}
