import Foundation
import GRDB
import Synchronization

extension EventStore {
    /// The read models every log keeps, applied in this order.
    static let projections: [any Projection] = [
        TicketSummaryProjection(), MembershipProjection(), MessageHistoryProjection(),
    ]

    /// The names of the projections, for `rebuild` and error messages.
    public static var projectionNames: [String] { projections.map(\.name) }

    /// Drops the rows of the named projections (all when `names` is nil) and rebuilds them from
    /// position 1, in chunks, while appends continue: a projection being rebuilt is skipped by
    /// appends until it has caught up with the head, then kept up inline again.
    ///
    /// - Throws: ``EventStoreError/Code/invalidEvent`` for an unknown projection name.
    public func rebuildProjections(
        _ names: [String]? = nil, progress: (@Sendable (ProjectionProgress) -> Void)? = nil
    ) async throws {
        let selected = try Self.projections(named: names)
        try await writeSession("could not reset projections") { session in
            // Under the head: no append on another node applies an event to a table being reset.
            try LogWriter.lockHead(session)
            for projection in selected {
                try projection.clear(session)
                try ProjectionCheckpoints.save(projection, position: 0, session)
            }
        }
        try await catchUpProjections(progress: progress)
    }

    /// Applies the events each projection has not seen yet, in transactions of a few pages of
    /// ``Configuration/projectionBatchSize`` events. Opening a log does this for projections
    /// that are behind (e.g. new in this build).
    ///
    /// On a file, the next page of events is read and decoded on a reading connection while the
    /// writer applies this one (`PagesAhead`): the two halves of the work on two cores.
    public func catchUpProjections(progress: (@Sendable (ProjectionProgress) -> Void)? = nil) async throws {
        let limit = configuration.projectionBatchSize
        if let shared {
            while true {
                let step = try await writeSession("could not update projections") { session in
                    try LogWriter.catchUpProjections(session, limit: limit, reader: shared.reader)
                }
                if let step { progress?(step) } else { return }
            }
        }
        // Pages are decoded ahead on a reading connection while the writer applies the one
        // before; a transaction takes several of them, waiting for the one being decoded. Only
        // where reads run beside the writer (a pool on a WAL file): an in-memory log's reads
        // queue behind its writer, which would be waiting for them.
        let ahead = readsBesideWriter ? PagesAhead(self) : nil
        defer { ahead?.cancel() }
        var builder = readsBesideWriter ? try await searchIndexBuiltBeside() : nil
        defer { builder?.close() }
        while true {
            let beside = builder
            let step = try await writeMapped("could not update projections") { db in
                try self.catchUpStep(
                    db, limit: limit, ahead: ahead, pages: Self.catchUpPagesPerTransaction, searchBuilder: beside)
            }
            if builder?.isRetired == true { builder = nil }
            guard let step else { return }
            progress?(step)
        }
    }

    /// A builder of the message history's search index (``SearchIndexBuilder``) when this
    /// catch-up brings the message history up from the first event, over at least
    /// ``Configuration/searchIndexBesideFrom`` events. Read on a snapshot: each step checks that
    /// the message history is still where the builder left it (``catchUpStep(_:limit:searchBuilder:events:)``).
    private func searchIndexBuiltBeside() async throws -> SearchIndexBuilder? {
        let threshold = configuration.searchIndexBesideFrom
        let erasures = try await readSession { session -> Int64? in
            let history = MessageHistoryProjection()
            let checkpoint = try ProjectionCheckpoints.fetchAll(session)[history.name]
            guard checkpoint?.position ?? 0 == 0, checkpoint?.version ?? history.version == history.version,
                try ChainHead.position(session) >= threshold
            else { return nil }
            return try ContentKeyring.erasuresVersion(session)
        }
        do {
            return try erasures.map {
                try SearchIndexBuilder(erasuresVersion: $0, directory: configuration.searchScratchDirectory)
            }
        } catch {
            // No scratch file (a temporary directory not writable, say): the index inline, as
            // on small logs.
            logger.warning(
                "The search index is rebuilt inline: its scratch file could not be made",
                metadata: ["ticketlog.error": "\(error)"])
            return nil
        }
    }

    /// In the step that brings a message history built with `builder` to the head: its index
    /// copied into the log, unless an erasure came since the build began (the index may hold
    /// texts it erased): then the message history is cleared, to be caught up again with its
    /// index kept inline. Returns the position its checkpoint is at.
    static func placeSearchIndex(_ builder: SearchIndexBuilder, at position: Int64, _ session: any SQLSession) throws
        -> Int64
    {
        defer { builder.retire() }
        guard try ContentKeyring.erasuresVersion(session) == builder.erasuresVersion,
            let db = (session as? SQLiteSession)?.db
        else {
            try MessageHistoryProjection().clear(session)
            return 0
        }
        try builder.finish()
        try builder.copy(into: db)
        return position
    }

    /// How many pages of ``Configuration/projectionBatchSize`` events one catch-up transaction
    /// applies. Each commit writes the pages its events touched, each ticket's summary and a
    /// search segment once, so larger transactions rebuild faster; but a page decoded whole
    /// is memory (20,000 events decoded at once took a 1M-event rebuild's peak RSS from 127 to
    /// 188 MB), so the pages stay at 5,000 and a transaction takes several. 1M-event rebuild,
    /// two alternating runs each: one page 10.4/10.6 s at 127 MB, three 8.5/8.9 s at 142 MB,
    /// four 8.2/8.3 s at 147 MB — three keeps the 150 MB limit with a margin.
    static let catchUpPagesPerTransaction = 3

    /// Up to `limit` events from position `from` on, decoded (and opened) on a reading
    /// connection, with the keyring's erasure generation they were opened under.
    func projectionPage(from: Int64, limit: Int) async throws -> ProjectionPage {
        let generation = keyring?.erasureGeneration ?? 0
        let events = try await read { db in
            var events: [ProjectedEvent] = []
            events.reserveCapacity(limit)
            try self.projectedEvents(from: from, limit: limit, db) { events.append($0) }
            return events
        }
        return ProjectionPage(from: from, limit: limit, erasureGeneration: generation, events: events)
    }

    static func projections(named names: [String]?) throws -> [any Projection] {
        guard let names else { return projections }
        return try names.map { name in
            guard let projection = projections.first(where: { $0.name == name }) else {
                throw EventStoreError.invalid(
                    "no projection named '\(name)'; the projections are \(projectionNames.joined(separator: ", "))")
            }
            return projection
        }
    }

    /// Creates missing projection tables and resets those whose version changed. Runs at open,
    /// on either backend.
    static func prepareProjections(_ session: any SQLSession) throws {
        try ProjectionCheckpoints.createTable(session)
        let stored = try ProjectionCheckpoints.fetchAll(session)
        for projection in projections {
            switch stored[projection.name] {
            case .some(let checkpoint) where checkpoint.version == projection.version:
                continue
            case .some:
                try projection.dropSchema(session)
                fallthrough
            case .none:
                try projection.createSchema(session)
                try ProjectionCheckpoints.save(projection, position: 0, session)
            }
        }
    }

    /// Applies up to `limit` events (`pages` times that with `ahead`) to the projections that
    /// are behind, oldest first. Returns `nil` when every projection is at the head.
    ///
    /// Each page of `limit` events is the one decoded ahead (`prefetched` for the first, then
    /// what `ahead` holds, waited for if still being decoded) or read here. A page decoded ahead
    /// holds the same events, positions never changing, unless an erasure since made some of
    /// their content unreadable: then they are read again. `ahead` starts decoding the page
    /// after each one before it is applied.
    func catchUpStep(
        _ db: Database, limit: Int, prefetched: ProjectionPage? = nil, ahead: PagesAhead? = nil, pages: Int = 1,
        searchBuilder: SearchIndexBuilder? = nil
    ) throws -> ProjectionProgress? {
        let session = SQLiteSession(db)
        let generation = keyring?.erasureGeneration ?? 0
        return try Self.catchUpStep(session, limit: limit * max(1, pages), searchBuilder: searchBuilder) {
            from, total, apply in
            var next = from
            let end = from + Int64(total)
            var first = prefetched
            while next < end {
                let pageLimit = min(limit, Int(end - next))
                var page = first.flatMap { $0.from == next && $0.limit == pageLimit ? $0 : nil }
                first = nil
                if page == nil { page = ahead?.take(from: next, limit: pageLimit) }
                if let decoded = page, decoded.events.isEmpty || decoded.erasureGeneration != generation {
                    page = nil
                }
                // A page decoded short ends at the head it saw: nothing follows it to decode.
                if page.map({ $0.events.count == pageLimit }) ?? true {
                    ahead?.start(from: next + Int64(pageLimit), limit: limit)
                }
                var count = 0
                if let page {
                    // By index: `for event in` copies each event (a retain of every string in it).
                    for index in page.events.indices { try apply(page.events[index]) }
                    count = page.events.count
                } else {
                    try self.projectedEvents(from: next, limit: pageLimit, db) { event in
                        try apply(event)
                        count += 1
                    }
                }
                if count < pageLimit { return }
                next += Int64(pageLimit)
            }
        }
    }

    /// Up to `limit` events from position `from` on, in order, decoded (and opened), each with
    /// its stream's key.
    private func projectedEvents(
        from: Int64, limit: Int, _ db: Database, _ body: (ProjectedEvent) throws -> Void
    ) throws {
        try forEachStoredEvent(
            db, sql: "SELECT \(Self.eventColumns) FROM events WHERE position >= ? ORDER BY position LIMIT ?",
            [.integer(from), .integer(Int64(limit))]
        ) { event, stream in
            try body(ProjectedEvent(event: try decodeRecord(event, db: db), streamKey: stream))
        }
    }

    /// A catch-up step on a log read through `events`: it calls its third argument with each
    /// event from position `from` on, `limit` at most, in order.
    static func catchUpStep(
        _ session: any SQLSession, limit: Int, searchBuilder: SearchIndexBuilder? = nil,
        events: (Int64, Int, (ProjectedEvent) throws -> Void) throws -> Void
    ) throws -> ProjectionProgress? {
        let head = try ChainHead.position(session)
        var checkpoints = try ProjectionCheckpoints.fetchAll(session)
        // The builder goes on only from where it left the message history; another catch-up
        // (another process on the file) moved it otherwise, and the builder is given up. A
        // history left half-built beside an index no catch-up is building (one that failed or
        // was given up, or another process's) is cleared, to be built again from the start.
        let history = MessageHistoryProjection()
        let built = checkpoints[history.name]
        let searchBuilder = searchBuilder.flatMap { $0.continues(from: built?.position ?? 0) ? $0 : nil }
        if searchBuilder == nil, built?.version == MessageHistoryProjection.besideVersion {
            try history.clear(session)
            try ProjectionCheckpoints.save(history, position: 0, session)
            checkpoints[history.name] = .init(version: history.version, position: 0)
        }
        let lagging = Self.projections.filter { (checkpoints[$0.name]?.position ?? 0) < head }.map {
            projection -> any Projection in
            // The message history hands its search documents to the builder, its checkpoint
            // marked as built so (``MessageHistoryProjection/besideVersion``).
            guard let searchBuilder, var history = projection as? MessageHistoryProjection else { return projection }
            history.searchBuilder = searchBuilder
            return history
        }
        guard !lagging.isEmpty else { return nil }
        let from = lagging.map { checkpoints[$0.name]?.position ?? 0 }.min()! + 1
        var last = from - 1
        // Per projection: a session, and the position it has applied up to.
        var sessions = lagging.map { (session: ProjectionSession([$0]), after: checkpoints[$0.name]?.position ?? 0) }
        try events(from, limit) { projected in
            for index in sessions.indices where sessions[index].after < projected.event.position {
                try sessions[index].session.apply(projected, session)
            }
            last = projected.event.position
        }
        guard last >= from else {
            // The head says there are events the table does not hold (a log cut back behind its
            // head): no step could make progress. `verify` says what is wrong.
            throw EventStoreError.corrupt(
                "the projections cannot catch up: the log's head is at position \(head) but no event follows position \(from - 1)",
                position: from)
        }
        for index in sessions.indices { try sessions[index].session.finish(session) }
        for projection in lagging {
            if let searchBuilder, projection is MessageHistoryProjection {
                guard last == head else {
                    searchBuilder.built(upTo: last)
                    try ProjectionCheckpoints.save(projection, position: last, session)
                    continue
                }
                let placed = try placeSearchIndex(searchBuilder, at: last, session)
                try ProjectionCheckpoints.save(history, position: placed, session)
                continue
            }
            try ProjectionCheckpoints.save(
                projection, position: max(last, checkpoints[projection.name]?.position ?? 0), session)
        }
        return ProjectionProgress(position: last, headPosition: head, projections: lagging.map(\.name))
    }

    /// The projections whose checkpoint is `head`: the ones appends keep up inline.
    static func liveProjections(_ session: any SQLSession, head: Int64) throws -> [any Projection] {
        let checkpoints = try ProjectionCheckpoints.fetchAll(session)
        return projections.filter { checkpoints[$0.name]?.position == head }
    }

    /// Runs a write, mapping SQLite failures to ``EventStoreError/Code/storageFailure``.
    func writeMapped<T: Sendable>(_ failure: String, _ body: @escaping @Sendable (Database) throws -> T) async throws
        -> T
    {
        do {
            return try await writer.write(body)
        } catch {
            throw Self.mapStorageError(error, failure)
        }
    }
}

/// Events decoded ahead of a catch-up step (``EventStore/catchUpProjections(progress:)``):
/// positions never change, so a page read on a snapshot is the page the step would read, as long
/// as no erasure came in between (the generation they were opened under).
struct ProjectionPage: Sendable {
    var from: Int64
    var limit: Int
    var erasureGeneration: Int
    var events: [ProjectedEvent]
}

/// The page of events being decoded ahead of a catch-up's writer, on a reading connection
/// (``EventStore/projectionPage(from:limit:)``), one at a time: the writer takes it inside its
/// transaction, waiting while it is still being decoded (the decoding never waits for the
/// writer: a read on a WAL file does not), and starts the next. So a transaction applies
/// several pages while at most two are in memory.
final class PagesAhead: Sendable {
    private final class Slot: Sendable {
        let from: Int64
        let limit: Int
        private let done = DispatchSemaphore(value: 0)
        private let page = Mutex<ProjectionPage?>(nil)

        init(from: Int64, limit: Int) {
            self.from = from
            self.limit = limit
        }

        func fulfil(_ decoded: ProjectionPage?) {
            page.withLock { $0 = decoded }
            done.signal()
        }

        func wait() -> ProjectionPage? {
            done.wait()
            return page.withLock { $0 }
        }
    }

    private struct Pending: Sendable {
        var slot: Slot
        var task: Task<Void, Never>
    }

    private let store: EventStore
    private let pending = Mutex<Pending?>(nil)

    init(_ store: EventStore) {
        self.store = store
    }

    /// Starts decoding `limit` events from `from` on, in place of any page not taken.
    func start(from: Int64, limit: Int) {
        let slot = Slot(from: from, limit: limit)
        let task = Task { [store] in
            slot.fulfil(try? await store.projectionPage(from: from, limit: limit))
        }
        let previous = pending.withLock { pending in
            let untaken = pending
            pending = Pending(slot: slot, task: task)
            return untaken
        }
        previous?.task.cancel()
    }

    /// The page of `limit` events from `from`, once decoded; `nil` when another was started
    /// (or none), or its decoding failed (then the caller reads the events itself).
    func take(from: Int64, limit: Int) -> ProjectionPage? {
        let taken = pending.withLock { pending -> Slot? in
            guard let slot = pending?.slot, slot.from == from, slot.limit == limit else { return nil }
            pending = nil
            return slot
        }
        return taken?.wait()
    }

    func cancel() {
        pending.withLock { pending in
            pending?.task.cancel()
            pending = nil
        }
    }
}

/// How far a projection catch-up or rebuild has come.
public struct ProjectionProgress: Sendable {
    /// The last position applied.
    public var position: Int64
    public var headPosition: Int64
    /// The projections being brought up to date.
    public var projections: [String]
}

/// `projection_checkpoints(name, version, position)`: per projection, its version and the last
/// position applied; written in the same transaction as the projection's rows.
enum ProjectionCheckpoints {
    struct Checkpoint {
        var version: Int
        var position: Int64
    }

    static func createTable(_ session: any SQLSession) throws {
        try session.execute(
            session.dialect.schema(
                """
                CREATE TABLE IF NOT EXISTS projection_checkpoints (
                    name TEXT PRIMARY KEY NOT NULL,
                    version INTEGER NOT NULL,
                    position INTEGER NOT NULL
                ) WITHOUT ROWID, STRICT
                """))
    }

    static func fetchAll(_ session: any SQLSession) throws -> [String: Checkpoint] {
        var result: [String: Checkpoint] = [:]
        for row in try session.rows("SELECT name, version, position FROM projection_checkpoints", []) {
            guard let name = row[0].text, let version = row[1].integer, let position = row[2].integer else {
                throw EventStoreError.corrupt("projection_checkpoints holds a row of the wrong types", position: nil)
            }
            result[name] = Checkpoint(version: Int(version), position: position)
        }
        return result
    }

    /// Saves the checkpoints of `projections`, all at `position`, in one statement.
    static func save(_ projections: [any Projection], position: Int64, _ session: any SQLSession) throws {
        guard !projections.isEmpty else { return }
        try session.send(
            """
            INSERT INTO projection_checkpoints(name, version, position)
            VALUES \(Array(repeating: "(?, ?, ?)", count: projections.count).joined(separator: ", "))
            ON CONFLICT(name) DO UPDATE SET version = excluded.version, position = excluded.position
            """,
            projections.flatMap {
                [SQLValue.text($0.name), .integer(Int64($0.version)), .integer(position)]
            })
    }

    static func save(_ projection: any Projection, position: Int64, _ session: any SQLSession) throws {
        try session.send(
            """
            INSERT INTO projection_checkpoints(name, version, position) VALUES (?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET version = excluded.version, position = excluded.position
            """, [.text(projection.name), .integer(Int64(projection.version)), .integer(position)])
    }
}
