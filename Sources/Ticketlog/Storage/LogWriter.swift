import Foundation
import Synchronization

/// Appends events through a session of either backend: the chain, the Merkle tree, positions,
/// versions, idempotent retries and the projections in the same transaction, written once above
/// the storage boundary. PostgreSQL's appends go through it; the SQLite store still has its own
/// writer (group commit, content encryption, rows bound through SQLite's C API), which applies
/// the same projections and the same command decisions through the same session type.
///
/// Decided appends (commands: ``PreparedAppend/decide``) run here too, among the others of a
/// transaction. Group commit is the caller's (``GroupCommitter``: several callers' appends in one
/// ``write(_:session:)``).
///
/// With a keyring (a log opened with its master key), personal fields are sealed as the SQLite
/// writer seals them, each new content key's row is written in the transaction of the first
/// event sealed with it, and each transaction first catches up with erasures and master-key
/// rotations made by other nodes (``ContentKeyring/refresh(_:name:)``).
package final class LogWriter: Sendable {
    let configuration: EventStore.Configuration
    private let dictionaries: Mutex<[Int64: LZ4Dictionary]>
    let keyring: ContentKeyring?
    /// How the log is named in messages.
    private let name: String

    /// A writer for the log a session reads, with its LZ4 dictionaries, sealing content with
    /// `keyring` when there is one.
    package init(
        configuration: EventStore.Configuration, session: any SQLSession, keyring: ContentKeyring? = nil,
        name: String = "the log"
    ) throws {
        self.configuration = configuration
        self.keyring = keyring
        self.name = name
        dictionaries = Mutex(try LogTables(session).dictionaries(compressionLevel: configuration.compressionLevel))
    }

    /// The newest dictionary: what new events are compressed with.
    private var current: LZ4Dictionary? {
        dictionaries.withLock { $0.values.max { $0.id < $1.id } }
    }

    /// ``current``, for the store deciding whether a first dictionary is due.
    var currentDictionary: LZ4Dictionary? { current }

    /// Compresses new events with `dictionary` from now on (once its transaction committed).
    func install(_ dictionary: LZ4Dictionary) {
        dictionaries.withLock { $0[dictionary.id] = dictionary }
    }

    /// Reads the dictionaries again (after a copy brought the log's own).
    package func reloadDictionaries(_ session: any SQLSession) throws {
        let loaded = try LogTables(session).dictionaries(compressionLevel: configuration.compressionLevel)
        dictionaries.withLock { $0 = loaded }
    }

    /// The dictionaries, read again when `row` names one not loaded yet.
    private func dictionaries(for row: StoredEventRow, _ session: any SQLSession) throws -> [Int64: LZ4Dictionary] {
        let id = BodyCodec.dictionaryID(row.codec)
        let known = dictionaries.withLock { $0 }
        guard id != BodyCodec.uncompressed, known[id] == nil else { return known }
        try reloadDictionaries(session)
        return dictionaries.withLock { $0 }
    }

    /// Takes the head: on PostgreSQL a row lock on `meta`'s head row, held to the end of the
    /// transaction, which every writer and projection catch-up on every node takes first. (An
    /// SQLite transaction holds the whole file's write lock already.)
    ///
    /// On PostgreSQL, returns what a writer checks under the lock, read in the same statement:
    /// the master key fingerprint the log records and the `erasures` stream's version
    /// (``ContentKeyring/catchUp(fingerprint:erasures:_:name:)``).
    @discardableResult
    static func lockHead(_ session: any SQLSession) throws -> (fingerprint: String?, erasures: Int64)? {
        guard session.dialect == .postgres else { return nil }
        let row = try session.rows(
            """
            SELECT (SELECT text FROM meta WHERE key = 'master_key_fingerprint'),
                   (SELECT version FROM streams WHERE name = ?)
            FROM meta WHERE key = 'head_position' FOR UPDATE
            """, [.text(StreamID.erasures.rawValue)]
        ).first
        return (row?[0].text, row?[1].integer ?? 0)
    }

    /// Creates the projection tables a log lacks and resets those whose version changed.
    package static func prepareProjections(_ session: any SQLSession) throws {
        try lockHead(session)
        try EventStore.prepareProjections(session)
    }

    /// Applies up to `limit` events to the projections that are behind the head; `nil` when
    /// every projection is at the head. Under the head lock: a catch-up on one node and an
    /// append on another never apply the same event twice. Events are decoded by `reader`
    /// (kept from step to step, so the vocabulary is read once).
    package static func catchUpProjections(_ session: any SQLSession, limit: Int, reader: LogReader) throws
        -> ProjectionProgress?
    {
        try lockHead(session)
        return try EventStore.catchUpStep(session, limit: limit) { from, limit, apply in
            for event in try reader.projected(session, from: from, limit: limit) { try apply(event) }
        }
    }

    /// Validates and encodes an append outside any transaction.
    package func prepare(_ append: StreamAppend) throws -> PreparedAppend {
        try EventStore.prepare(
            append.events, stream: append.stream, expectedVersion: append.expectedVersion,
            configuration: configuration, dictionary: current, keyring: keyring)
    }

    /// Writes prepared appends in the session's transaction. One refused (a version conflict,
    /// an id stored with other content) leaves the others: everything that refuses an append is
    /// decided before it writes anything (``check(_:turn:session:)``), so no savepoint is needed
    /// and the statements of consecutive appends can travel together (PostgreSQL merges them,
    /// ``SQLSession/send(_:_:)``). A failure once an append writes fails the transaction. On
    /// PostgreSQL the head row is locked first, so writers on every node take positions one
    /// transaction at a time, in commit order (ARCHITECTURE.md, "Storage boundary").
    ///
    /// Returns the results, the head after the transaction and the ids of the content keys
    /// whose rows it wrote (``ContentKeyring/written(_:)`` once it committed).
    package func write(_ appends: [PreparedAppend], session: any SQLSession) throws -> (
        results: [Result<AppendResult, any Error>], head: Int64, keysWritten: [String]
    ) {
        var turn = try begin(session)
        try prefetchStoredIDs(appends, into: &turn, session)
        try prefetchStreams(appends.map(\.stream), into: &turn, session)
        try prefetchKeys(appends.flatMap(\.events), into: &turn, session)
        var results: [Result<AppendResult, any Error>] = []
        for (index, original) in appends.enumerated() {
            var append = original
            if let decide = append.decide {
                do {
                    append = try self.decide(decide, for: append, number: index, &turn, session)
                } catch let refused as EventStoreError where refused.code == .storageFailure {
                    throw refused
                } catch {
                    results.append(.failure(error))
                    continue
                }
            }
            if let keyring, keyring.holdsErasedKey(append.events, sealedAt: append.keyringGeneration) {
                // Sealed before this transaction learned that another node erased the key: sealed
                // again under a live one (a key destroyed must not take content written after
                // the erasure with it).
                do {
                    append = try prepare(
                        StreamAppend(
                            stream: append.stream, events: append.events.map(\.proposed),
                            expectedVersion: append.expectedVersion))
                } catch {
                    results.append(.failure(error))
                    continue
                }
            }
            let checked: Check
            do {
                checked = try check(append, turn: turn, session: session)
            } catch let refused as EventStoreError where refused.code != .storageFailure {
                results.append(.failure(refused))
                continue
            }
            switch checked {
            case .stored(let result): results.append(.success(result))
            case .accepted(let version): results.append(.success(try write(append, at: version, session, &turn)))
            }
        }
        try end(&turn, session)
        return (results, turn.head.position, turn.keysWritten)
    }

    /// Runs a decided append's decision (``PreparedAppend/decide``) at the stream's version as
    /// this transaction has it, after writing what the transaction kept in memory for the
    /// projections (the decision reads them), and prepares its events. A decision that writes
    /// (sync marks) does so in a savepoint, opened before its first write
    /// (``DecisionSession``): one that throws takes back what it wrote, and the appends sharing
    /// the transaction go on; one that decides on nothing keeps what it wrote and throws
    /// ``DecidedNothing``. Returns the append to check and write.
    private func decide(
        _ decide: (any SQLSession, Int64) throws -> [ProposedEvent], for append: PreparedAppend, number: Int,
        _ turn: inout Turn, _ session: any SQLSession
    ) throws -> PreparedAppend {
        try Self.projecting { try turn.projections.finishForDecision(session) }
        let version = turn.streams[append.stream]?.version ?? 0
        let deciding = DecisionSession(session, savepoint: "decision_\(number)")
        let prepared: PreparedAppend
        do {
            let events = try decide(deciding, version)
            prepared = try prepare(
                StreamAppend(
                    stream: append.stream, events: events,
                    expectedVersion: version == 0 ? .noStream : .exact(version)))
        } catch let nothing as DecidedNothing {
            try deciding.release()
            throw nothing
        } catch {
            try deciding.rollBack()
            throw error
        }
        // Released before the events are written: they belong to the transaction itself, not to
        // a subtransaction (PostgreSQL slows every snapshot down once a transaction holds more
        // than 64 subtransactions that wrote).
        try deciding.release()
        try prefetchStoredIDs([prepared], into: &turn, session)
        try prefetchKeys(prepared.events, into: &turn, session)
        return prepared
    }

    /// A decision's session: its savepoint is opened just before the decision's first write,
    /// so a decision that only reads — every command's — costs no `SAVEPOINT` and `RELEASE`
    /// (on PostgreSQL two of the ~9 round trips a `POST …/messages` made under the head lock).
    /// A statement that is not a `SELECT` counts as a write. A read that fails is a storage
    /// failure, which fails the whole transaction with or without a savepoint.
    private final class DecisionSession: SQLSession {
        private let base: any SQLSession
        private let savepoint: String
        private var opened = false

        init(_ base: any SQLSession, savepoint: String) {
            self.base = base
            self.savepoint = savepoint
        }

        var dialect: SQLDialect { base.dialect }

        func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
            try open()
            return try base.execute(sql, arguments)
        }

        func send(_ sql: String, _ arguments: [SQLValue]) throws {
            try open()
            try base.send(sql, arguments)
        }

        func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
            if !SQLText.isSelect(sql) { try open() }
            return try base.rows(sql, arguments)
        }

        func rows(_ sql: String, in values: [SQLValue]) throws -> [SQLRow] {
            if !SQLText.isSelect(sql) { try open() }
            return try base.rows(sql, in: values)
        }

        func eventRows(_ sql: String, _ arguments: [SQLValue]) throws -> [StoredEventRow?] {
            if !SQLText.isSelect(sql) { try open() }
            return try base.eventRows(sql, arguments)
        }

        /// Keeps what the decision wrote, if it wrote.
        func release() throws {
            guard opened else { return }
            try base.send("RELEASE SAVEPOINT \(savepoint)", [])
            opened = false
        }

        /// Takes back what the decision wrote, if it wrote.
        func rollBack() throws {
            guard opened else { return }
            try base.execute("ROLLBACK TO SAVEPOINT \(savepoint)", [])
            try base.send("RELEASE SAVEPOINT \(savepoint)", [])
            opened = false
        }

        private func open() throws {
            guard !opened else { return }
            try base.send("SAVEPOINT \(savepoint)", [])
            opened = true
        }
    }

    /// What a write transaction carries from append to append.
    private struct Turn {
        var head: ChainHead
        let start: Int64
        /// The projections at the head, kept up in this transaction (one still catching up is
        /// left to its catch-up).
        let live: [any Projection]
        var projections: ProjectionSession
        /// The transaction's actor and type keys, looked up or made once each.
        var keys = EventStore.RowKeys()
        /// The streams of the transaction's appends as it has them: key and version (no entry:
        /// no such stream yet), read once up front.
        var streams: [StreamID: (key: Int64, version: Int64)] = [:]
        /// Of the appends' event ids, those the log holds (read once up front) or this
        /// transaction wrote: only an append with one of them is looked at as a retry.
        var storedIDs: Set<[UInt8]> = []
        /// The streams whose version this transaction changed: written once, at its end.
        var changedStreams: Set<StreamID> = []
        /// The largest key of each key-numbered table, once this transaction read or made one.
        var lastKeys: [String: Int64] = [:]
        /// The content keys whose rows this transaction wrote.
        var keysWritten: [String] = []
    }

    /// Reads once, for all `appends`, which of their event ids the log holds: one statement per
    /// transaction instead of one per event.
    private func prefetchStoredIDs(_ appends: [PreparedAppend], into turn: inout Turn, _ session: any SQLSession)
        throws
    {
        let ids = appends.flatMap { $0.events.map { SQLValue.blob(Array($0.proposed.id.databaseBytes)) } }
        for row in try session.rows("SELECT id FROM events WHERE id IN", in: ids) {
            if let id = row[0].blob { turn.storedIDs.insert(id) }
        }
    }

    /// Reads the rows of `streams` once, and what the projections will need of them: a few
    /// statements per transaction instead of some per append.
    private func prefetchStreams(_ streams: [StreamID], into turn: inout Turn, _ session: any SQLSession) throws {
        let names = Set(streams.map(\.rawValue)).map(SQLValue.text)
        var keys: [Int64] = []
        for row in try session.rows("SELECT name, key, version FROM streams WHERE name IN", in: names) {
            guard let name = row[0].text, let key = row[1].integer, let version = row[2].integer else { continue }
            turn.streams[StreamID(unchecked: name)] = (key, version)
            keys.append(key)
        }
        try Self.projecting { try turn.projections.prefetch(streams: keys, session) }
    }

    /// Reads the keys of the events' actors and types the transaction does not know yet: one
    /// statement each per transaction. Every write reads its events' keys ahead this way, so a
    /// type or actor not found then is new (``typeKey(_:_:_:)``).
    private func prefetchKeys(_ events: [PreparedAppend.Event], into turn: inout Turn, _ session: any SQLSession)
        throws
    {
        let types = Set(events.map(\.proposed.type.rawValue)).filter { turn.keys.types[$0] == nil }
        for row in try session.rows("SELECT name, key FROM event_types WHERE name IN", in: types.map(SQLValue.text)) {
            guard let name = row[0].text, let key = row[1].integer else { continue }
            turn.keys.types[name] = key
        }
        let actors = Set(events.map(\.proposed.actor)).filter { turn.keys.actors[$0] == nil }
        let ids = Set(actors.map(\.id)).map(SQLValue.text)
        for row in try session.rows("SELECT id, role, key FROM actors WHERE id IN", in: ids) {
            guard let id = row[0].text, let role = row[1].text.flatMap(Actor.Role.init(rawValue:)),
                let key = row[2].integer
            else { continue }
            let actor = Actor(id: id, role: role)
            if actors.contains(actor) { turn.keys.actors[actor] = key }
        }
    }

    private func begin(_ session: any SQLSession) throws -> Turn {
        let locked = try Self.lockHead(session)
        // Under the head lock: an erasure on another node is either before this transaction, and
        // its keys are forgotten now, or after it.
        if let keyring {
            if let locked {
                try keyring.catchUp(fingerprint: locked.fingerprint, erasures: locked.erasures, session, name: name)
            } else {
                try keyring.refresh(session, name: name)
            }
        } else if locked?.fingerprint != nil {
            // Another node opened the log with a master key since this one opened it: content
            // written here in plaintext now could never be erased.
            throw EventStoreError(
                code: .masterKey,
                message:
                    "\(name) is encrypted now (another process opened it with a master key): restart this one with that key. Nothing was written"
            )
        }
        let head = try ChainHead.fetch(session)
        let live =
            configuration.inlineProjections ? try EventStore.liveProjections(session, head: head.position) : []
        return Turn(head: head, start: head.position, live: live, projections: ProjectionSession(live))
    }

    /// The projections' last rows, their checkpoints, the head and the notification, when the
    /// transaction appended anything.
    private func end(_ turn: inout Turn, _ session: any SQLSession) throws {
        guard turn.head.position != turn.start else { return }
        try saveVersions(of: turn.changedStreams.compactMap { turn.streams[$0] }, session)
        try Self.projecting { try turn.projections.finish(session) }
        try ProjectionCheckpoints.save(turn.live, position: turn.head.position, session)
        try turn.head.save(session)
        if session.dialect == .postgres {
            // Delivered at commit, and only if the transaction commits.
            try session.send("SELECT pg_notify('ticketlog_events', ?)", [.text(String(turn.head.position))])
        }
    }

    /// Runs projection work: a failure there is not the append's fault, and fails the whole
    /// transaction as a storage failure (no half-projected append is kept).
    private static func projecting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            throw EventStoreError(
                code: .storageFailure, message: "a projection could not be applied: \(error)", cause: error)
        }
    }

    /// What an append's check found: its events stored already by an earlier attempt (the
    /// original result), or the stream's version it is written at.
    private enum Check {
        case stored(AppendResult)
        case accepted(version: Int64)
    }

    /// Everything that can refuse `append`, decided before it writes: a retry of an append the
    /// log holds, an id stored with other content, a version conflict. Writes nothing.
    private func check(_ append: PreparedAppend, turn: Turn, session: any SQLSession) throws -> Check {
        let ids = append.events.map { Array($0.proposed.id.databaseBytes) }
        if ids.contains(where: turn.storedIDs.contains),
            let stored = try storedResult(of: append, stream: turn.streams[append.stream], session: session)
        {
            return .stored(stored)
        }
        let current = turn.streams[append.stream]?.version ?? 0
        guard append.expectedVersion.accepts(current) else {
            throw EventStoreError.versionConflict(append.stream, at: current, expected: append.expectedVersion)
        }
        return .accepted(version: current)
    }

    /// Writes a checked append at the stream's `current` version. Any failure here fails the
    /// transaction: it is never one append's refusal.
    private func write(_ append: PreparedAppend, at current: Int64, _ session: any SQLSession, _ turn: inout Turn)
        throws -> AppendResult
    {
        do {
            return try unguardedWrite(append, at: current, session, &turn)
        } catch let error as EventStoreError where error.code == .storageFailure {
            throw error
        } catch {
            throw EventStoreError(
                code: .storageFailure, message: "the append to \(append.stream) could not be written: \(error)",
                cause: error)
        }
    }

    private func unguardedWrite(
        _ append: PreparedAppend, at current: Int64, _ session: any SQLSession, _ turn: inout Turn
    )
        throws -> AppendResult
    {
        let streamKey: Int64
        if let key = turn.streams[append.stream]?.key {
            streamKey = key
        } else {
            streamKey = try newKey(
                in: "streams", columns: "name, version", values: [.text(append.stream.rawValue), .integer(0)],
                &turn, session)
            turn.projections.created(stream: streamKey)
        }
        var version = current
        let recordedAt = append.recordedAt.microsecondsSinceEpoch
        if let keyring {
            turn.keysWritten += try keyring.writeRows(
                of: append.events, now: configuration.clock(), session)
        }
        // Whether an erasure since the append was sealed may have destroyed one of its keys.
        let checksErasedKeys = keyring?.mayHoldErasedKeys(sealedAt: append.keyringGeneration) ?? false
        for event in append.events {
            version += 1
            let position = turn.head.position + 1
            let hash = HashChain.link(
                previous: turn.head.hash, position: position, version: version, body: event.canonical)
            try session.send(
                "INSERT INTO events(\(LogTables.eventColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    .integer(position), .integer(streamKey), .integer(version),
                    .blob(Array(event.proposed.id.databaseBytes)),
                    .integer(try typeKey(event.proposed.type.rawValue, &turn, session)),
                    .integer(try actorKey(event.proposed.actor, &turn, session)),
                    .integer(event.proposed.occurredAt.microsecondsSinceEpoch), .integer(recordedAt),
                    .integer(event.codec), .blob(event.blob), .blob(Array(hash.prefix(Schema.chainCheckSize))),
                ])
            try MerkleNodes.append(
                event.leaf.leafHash(of: event.canonical, position: position, version: version), to: &turn.head.tree,
                session)
            turn.head.position = position
            turn.head.hash = hash
            if !turn.projections.isEmpty {
                var recorded = EventBody(event.proposed, stream: append.stream, recordedAt: append.recordedAt)
                    .recorded(position: position, version: version)
                if checksErasedKeys, let key = event.sealedWith, keyring?.isErased(key) == true {
                    // Sealed under a key an erasure destroyed after this append was prepared:
                    // the projections see it as every later read will, erased.
                    recorded.payload = recorded.payload.mappingPersonalFields { _, _ in "" }
                    recorded.contentErased = true
                }
                try Self.projecting {
                    try turn.projections.apply(ProjectedEvent(event: recorded, streamKey: streamKey), session)
                }
            }
        }
        turn.streams[append.stream] = (streamKey, version)
        turn.changedStreams.insert(append.stream)
        turn.storedIDs.formUnion(append.events.map { Array($0.proposed.id.databaseBytes) })
        var result = AppendResult(
            positions: (turn.head.position - Int64(append.events.count) + 1)...turn.head.position,
            streamVersion: version,
            wasAlreadyStored: false)
        result.recordedAt = append.recordedAt
        return result
    }

    /// Writes the streams' versions: one statement per 250 streams, whatever the number of
    /// appends to them.
    private func saveVersions(of streams: [(key: Int64, version: Int64)], _ session: any SQLSession) throws {
        for start in stride(from: 0, to: streams.count, by: 250) {
            let chunk = streams[start..<min(start + 250, streams.count)]
            let cases = Array(repeating: "WHEN ? THEN ?", count: chunk.count).joined(separator: " ")
            let keys = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            try session.send(
                "UPDATE streams SET version = CASE key \(cases) END WHERE key IN (\(keys))",
                chunk.flatMap { [SQLValue.integer($0.key), .integer($0.version)] } + chunk.map { .integer($0.key) })
        }
    }

    /// Makes a row of a key-numbered table (streams, actors, types): the largest key plus one,
    /// the largest read once per table per transaction. Writers hold the head, so no two make
    /// one at once.
    private func newKey(
        in table: String, columns: String, values: [SQLValue], _ turn: inout Turn, _ session: any SQLSession
    ) throws -> Int64 {
        let key: Int64
        if let last = turn.lastKeys[table] {
            key = last + 1
        } else {
            key = (try session.value("SELECT max(key) FROM \(table)").integer ?? 0) + 1
        }
        turn.lastKeys[table] = key
        let placeholders = Array(repeating: "?", count: values.count + 1).joined(separator: ", ")
        try session.send(
            "INSERT INTO \(table)(key, \(columns)) VALUES (\(placeholders))", [.integer(key)] + values)
        return key
    }

    /// The key of an event type, made when the log has none (``prefetchKeys(_:into:_:)`` read
    /// those it has).
    private func typeKey(_ type: String, _ turn: inout Turn, _ session: any SQLSession) throws -> Int64 {
        if let key = turn.keys.types[type] { return key }
        let key = try newKey(in: "event_types", columns: "name", values: [.text(type)], &turn, session)
        turn.keys.types[type] = key
        return key
    }

    /// The key of an actor, made when the log has none (``prefetchKeys(_:into:_:)`` read those
    /// it has).
    private func actorKey(_ actor: Actor, _ turn: inout Turn, _ session: any SQLSession) throws -> Int64 {
        if let key = turn.keys.actors[actor] { return key }
        let key = try newKey(
            in: "actors", columns: "id, role", values: [.text(actor.id), .text(actor.role.rawValue)], &turn, session)
        turn.keys.actors[actor] = key
        return key
    }

    /// `stream` is the append's stream as this transaction has it (its versions are written at
    /// the end of the transaction).
    private func storedResult(
        of append: PreparedAppend, stream: (key: Int64, version: Int64)?, session: any SQLSession
    ) throws -> AppendResult? {
        var found: [(event: PreparedAppend.Event, row: StoredEventRow)] = []
        for event in append.events {
            guard
                let row = try session.row(
                    "SELECT \(LogTables.eventColumns) FROM events WHERE id = ?",
                    [.blob(Array(event.proposed.id.databaseBytes))]
                ).flatMap(StoredEventRow.init)
            else { continue }
            found.append((event, row))
        }
        guard let first = found.first else { return nil }
        guard found.count == append.events.count else {
            throw EventStoreError.partlyStored(first.event.proposed.id, at: first.row.position)
        }
        for (event, row) in found
        where try !isSame(event, row, stream: append.stream, streamKey: stream?.key, session) {
            throw EventStoreError.storedWithOtherContent(event.proposed.id, at: row.position)
        }
        let positions = found.map(\.row.position)
        return AppendResult(
            positions: positions.min()!...positions.max()!, streamVersion: stream?.version ?? 0,
            wasAlreadyStored: true)
    }

    /// Whether a stored row holds the prepared event: same stream, type, actor, time and body
    /// (the time it was recorded aside: a retry comes later). Sealed content is compared opened:
    /// sealing draws a fresh nonce each time, so a retry's ciphertext is never the stored one.
    private func isSame(
        _ event: PreparedAppend.Event, _ row: StoredEventRow, stream: StreamID, streamKey: Int64?,
        _ session: any SQLSession
    )
        throws -> Bool
    {
        guard row.stream == streamKey, row.occurredAt == event.proposed.occurredAt.microsecondsSinceEpoch,
            row.type
                == (try session.value(
                    "SELECT key FROM event_types WHERE name = ?", [.text(event.proposed.type.rawValue)]
                ).integer),
            row.actor
                == (try session.value(
                    "SELECT key FROM actors WHERE id = ? AND role = ?",
                    [.text(event.proposed.actor.id), .text(event.proposed.actor.role.rawValue)]
                ).integer),
            let (stored, _) = StoredBody.split(event.canonical)
        else { return false }
        let body = try row.storedBody(dictionaries: dictionaries(for: row, session))
        guard let keyring, event.sealedWith != nil || BodyCodec.isSealed(row.codec) else {
            return body == stored
        }
        let columns = EventColumns(
            id: event.proposed.id, stream: stream.rawValue, type: event.proposed.type.rawValue,
            actor: event.proposed.actor, occurredAt: row.occurredAt, recordedAt: row.recordedAt)
        let recorded = try keyring.open(
            EventStore.decodeRecord(stored: body, columns: columns, position: row.position, version: row.version),
            session)
        return !recorded.contentErased && recorded.proposed == event.proposed
    }
}
