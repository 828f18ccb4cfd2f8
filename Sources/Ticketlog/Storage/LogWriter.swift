import Foundation
import Synchronization

/// Appends events through a session of either backend: the chain, the Merkle tree, positions,
/// versions, idempotent retries and the projections in the same transaction, written once above
/// the storage boundary. PostgreSQL's appends go through it; the SQLite store still has its own
/// writer (group commit, content encryption, rows bound through SQLite's C API), which applies
/// the same projections and the same command decisions through the same session type.
///
/// Decided appends (commands) run here too (``transact(_:session:reader:decide:)``). Not yet
/// here: group commit, content encryption.
package final class LogWriter: Sendable {
    let configuration: EventStore.Configuration
    private let dictionaries: Mutex<[Int64: LZ4Dictionary]>

    /// A writer for the log a session reads, with its LZ4 dictionaries.
    package init(configuration: EventStore.Configuration, session: any SQLSession) throws {
        self.configuration = configuration
        dictionaries = Mutex(try LogTables(session).dictionaries(compressionLevel: configuration.compressionLevel))
    }

    /// The newest dictionary: what new events are compressed with.
    private var current: LZ4Dictionary? {
        dictionaries.withLock { $0.values.max { $0.id < $1.id } }
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
    static func lockHead(_ session: any SQLSession) throws {
        if session.dialect == .postgres {
            try session.execute("SELECT integer FROM meta WHERE key = 'head_position' FOR UPDATE")
        }
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
            configuration: configuration, dictionary: current, packsSealedFields: false
        ) { ($0, [], nil) }
    }

    /// Writes prepared appends in the session's transaction, each in its own savepoint: one
    /// refused (a version conflict, an id stored with other content) leaves the others. On
    /// PostgreSQL the head row is locked first, so writers on every node take positions one
    /// transaction at a time, in commit order (ARCHITECTURE.md, "Storage boundary").
    ///
    /// Returns the results and the head after the transaction.
    package func write(_ appends: [PreparedAppend], session: any SQLSession) throws -> (
        results: [Result<AppendResult, EventStoreError>], head: Int64
    ) {
        var turn = try begin(session)
        try prefetchStoredIDs(appends, into: &turn, session)
        try prefetchStreams(appends.map(\.stream), into: &turn, session)
        var results: [Result<AppendResult, EventStoreError>] = []
        for append in appends {
            let before = (turn.head, turn.keys, turn.streams[append.stream])
            try session.send("SAVEPOINT ticketlog_append", [])
            turn.projections.beginAppend()
            do {
                results.append(.success(try write(append, session: session, turn: &turn)))
                try session.send("RELEASE SAVEPOINT ticketlog_append", [])
            } catch let refused as EventStoreError where refused.code != .storageFailure {
                // Keys made inside the savepoint are gone with it, and so are the rows the
                // projections wrote; what they keep in memory is rolled back alike.
                try session.execute("ROLLBACK TO SAVEPOINT ticketlog_append")
                try session.execute("RELEASE SAVEPOINT ticketlog_append")
                turn.projections.rollBackAppend()
                (turn.head, turn.keys) = (before.0, before.1)
                turn.streams[append.stream] = before.2
                results.append(.failure(refused))
            }
        }
        try end(&turn, session)
        return (results, turn.head.position)
    }

    /// A decided append (``EventStore/transact(_:_:)`` on this writer's backend): the head taken,
    /// the ticket's version read, `decide` run with the ticket as this transaction sees it, and
    /// its events appended at that version, all in the session's transaction. What the decision
    /// writes (sync marks) commits with its events, or alone when it decides on none.
    ///
    /// Returns the events decided (none: nothing to append), the append's result when there were
    /// some, and the ticket's version after it.
    package func transact(
        _ stream: StreamID, session: any SQLSession, reader: LogReader,
        decide: (TicketTransaction) throws -> [ProposedEvent]
    ) throws -> (events: [ProposedEvent], result: AppendResult?, version: Int64) {
        var turn = try begin(session)
        try prefetchStreams([stream], into: &turn, session)
        let version = turn.streams[stream]?.version ?? 0
        let events = try decide(
            TicketTransaction(reads: TicketReads(session, reader: reader), stream: stream, version: version))
        guard !events.isEmpty else { return ([], nil, version) }
        let prepared = try prepare(
            StreamAppend(stream: stream, events: events, expectedVersion: version == 0 ? .noStream : .exact(version)))
        try prefetchStoredIDs([prepared], into: &turn, session)
        let result = try write(prepared, session: session, turn: &turn)
        try end(&turn, session)
        return (events, result, result.streamVersion)
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

    /// Reads the rows of `streams` once: one statement per transaction instead of one per append.
    private func prefetchStreams(_ streams: [StreamID], into turn: inout Turn, _ session: any SQLSession) throws {
        let names = Set(streams.map(\.rawValue)).map(SQLValue.text)
        for row in try session.rows("SELECT name, key, version FROM streams WHERE name IN", in: names) {
            guard let name = row[0].text, let key = row[1].integer, let version = row[2].integer else { continue }
            turn.streams[StreamID(unchecked: name)] = (key, version)
        }
    }

    private func begin(_ session: any SQLSession) throws -> Turn {
        try Self.lockHead(session)
        let head = try ChainHead.fetch(session)
        let live =
            configuration.inlineProjections ? try EventStore.liveProjections(session, head: head.position) : []
        return Turn(head: head, start: head.position, live: live, projections: ProjectionSession(live))
    }

    /// The projections' last rows, their checkpoints, the head and the notification, when the
    /// transaction appended anything.
    private func end(_ turn: inout Turn, _ session: any SQLSession) throws {
        guard turn.head.position != turn.start else { return }
        try Self.projecting { try turn.projections.finish(session) }
        for projection in turn.live {
            try ProjectionCheckpoints.save(projection, position: turn.head.position, session)
        }
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

    private func write(_ append: PreparedAppend, session: any SQLSession, turn: inout Turn) throws -> AppendResult {
        let ids = append.events.map { Array($0.proposed.id.databaseBytes) }
        if ids.contains(where: turn.storedIDs.contains), let stored = try storedResult(of: append, session: session) {
            return stored
        }
        let stream = turn.streams[append.stream]
        let current = stream?.version ?? 0
        guard append.expectedVersion.accepts(current) else {
            throw EventStoreError.versionConflict(append.stream, at: current, expected: append.expectedVersion)
        }
        let streamKey: Int64
        if let key = stream?.key {
            streamKey = key
        } else {
            streamKey = try newKey(
                in: "streams", columns: "name, version", values: [.text(append.stream.rawValue), .integer(0)],
                session)
        }
        var version = current
        let recordedAt = append.recordedAt.microsecondsSinceEpoch
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
                    .integer(try typeKey(event.proposed.type.rawValue, &turn.keys, session)),
                    .integer(try actorKey(event.proposed.actor, &turn.keys, session)),
                    .integer(event.proposed.occurredAt.microsecondsSinceEpoch), .integer(recordedAt),
                    .integer(event.codec), .blob(event.blob), .blob(Array(hash.prefix(Schema.chainCheckSize))),
                ])
            try MerkleNodes.append(
                event.leaf.leafHash(of: event.canonical, position: position, version: version), to: &turn.head.tree,
                session)
            turn.head.position = position
            turn.head.hash = hash
            if !turn.projections.isEmpty {
                let recorded = EventBody(event.proposed, stream: append.stream, recordedAt: append.recordedAt)
                    .recorded(position: position, version: version)
                try Self.projecting {
                    try turn.projections.apply(ProjectedEvent(event: recorded, streamKey: streamKey), session)
                }
            }
        }
        try session.send("UPDATE streams SET version = ? WHERE key = ?", [.integer(version), .integer(streamKey)])
        turn.streams[append.stream] = (streamKey, version)
        turn.storedIDs.formUnion(ids)
        var result = AppendResult(
            positions: (turn.head.position - Int64(append.events.count) + 1)...turn.head.position,
            streamVersion: version,
            wasAlreadyStored: false)
        result.recordedAt = append.recordedAt
        return result
    }

    /// The key of a vocabulary row, made (the largest key plus one) when missing: writers hold
    /// the head, so no two make one at once.
    private func newKey(in table: String, columns: String, values: [SQLValue], _ session: any SQLSession) throws
        -> Int64
    {
        let key = (try session.value("SELECT max(key) FROM \(table)").integer ?? 0) + 1
        let placeholders = Array(repeating: "?", count: values.count + 1).joined(separator: ", ")
        try session.send(
            "INSERT INTO \(table)(key, \(columns)) VALUES (\(placeholders))", [.integer(key)] + values)
        return key
    }

    private func typeKey(_ type: String, _ keys: inout EventStore.RowKeys, _ session: any SQLSession) throws
        -> Int64
    {
        if let key = keys.types[type] { return key }
        let key =
            try session.value("SELECT key FROM event_types WHERE name = ?", [.text(type)]).integer
            ?? newKey(in: "event_types", columns: "name", values: [.text(type)], session)
        keys.types[type] = key
        return key
    }

    private func actorKey(_ actor: Actor, _ keys: inout EventStore.RowKeys, _ session: any SQLSession) throws
        -> Int64
    {
        if let key = keys.actors[actor] { return key }
        let values: [SQLValue] = [.text(actor.id), .text(actor.role.rawValue)]
        let key =
            try session.value("SELECT key FROM actors WHERE id = ? AND role = ?", values).integer
            ?? newKey(in: "actors", columns: "id, role", values: values, session)
        keys.actors[actor] = key
        return key
    }

    /// When the append's ids are stored already: its original result if it is the same append
    /// (a retry), ``EventStoreError/Code/duplicateEventID`` if not. `nil` when none is stored.
    /// (Checked before writing: on PostgreSQL a refused insert would abort the transaction.)
    private func storedResult(of append: PreparedAppend, session: any SQLSession) throws -> AppendResult? {
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
        let stream = try session.row("SELECT key, version FROM streams WHERE name = ?", [.text(append.stream.rawValue)])
        for (event, row) in found where try !isSame(event, row, streamKey: stream?[0].integer, session) {
            throw EventStoreError.storedWithOtherContent(event.proposed.id, at: row.position)
        }
        let positions = found.map(\.row.position)
        return AppendResult(
            positions: positions.min()!...positions.max()!, streamVersion: stream?[1].integer ?? 0,
            wasAlreadyStored: true)
    }

    /// Whether a stored row holds the prepared event: same stream, type, actor, time and body
    /// (the time it was recorded aside: a retry comes later).
    private func isSame(
        _ event: PreparedAppend.Event, _ row: StoredEventRow, streamKey: Int64?, _ session: any SQLSession
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
        return try row.storedBody(dictionaries: dictionaries(for: row, session)) == stored
    }
}
