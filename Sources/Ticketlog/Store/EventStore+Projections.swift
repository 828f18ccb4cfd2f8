import GRDB

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

    /// Applies the events each projection has not seen yet, in transactions of a few thousand
    /// events. Opening a log does this for projections that are behind (e.g. new in this build).
    ///
    /// On a file, the next page of events is read and decoded on a reading connection while the
    /// writer applies this one (`ProjectionPage`): the two halves of the work on two cores.
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
        // The page being decoded ahead, and where it starts.
        var page: (from: Int64, task: Task<ProjectionPage?, Never>)?
        func decodeAhead(from: Int64) -> (from: Int64, task: Task<ProjectionPage?, Never>) {
            (from, Task { try? await self.projectionPage(from: from, limit: limit) })
        }
        while true {
            let prefetched = await page?.task.value
            // The page after this one, decoded while this one is applied.
            page = prefetched.map { decodeAhead(from: $0.from + Int64(limit)) }
            let step = try await writeMapped("could not update projections") { db in
                try self.catchUpStep(db, limit: limit, prefetched: prefetched)
            }
            guard let step else {
                page?.task.cancel()
                return
            }
            progress?(step)
            if page?.from != step.position + 1 {
                // The first step, or one that did not end where the page after it begins (a
                // short page, projections at different positions): decode the next one now.
                page?.task.cancel()
                page = decodeAhead(from: step.position + 1)
            }
        }
    }

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

    /// Applies up to `limit` events to the projections that are behind, oldest first. Returns
    /// `nil` when every projection is at the head.
    func catchUpStep(_ db: Database, limit: Int, prefetched: ProjectionPage? = nil) throws -> ProjectionProgress? {
        let session = SQLiteSession(db)
        return try Self.catchUpStep(session, limit: limit) { from, limit, apply in
            // A page decoded ahead holds the same events, unless an erasure since made some of
            // their content unreadable: then they are read again.
            if let prefetched, prefetched.from == from, prefetched.limit == limit, !prefetched.events.isEmpty,
                prefetched.erasureGeneration == (self.keyring?.erasureGeneration ?? 0)
            {
                for event in prefetched.events { try apply(event) }
                return
            }
            try self.projectedEvents(from: from, limit: limit, db, apply)
        }
    }

    /// Up to `limit` events from position `from` on, in order, decoded (and opened), each with
    /// its stream's key.
    private func projectedEvents(
        from: Int64, limit: Int, _ db: Database, _ body: (ProjectedEvent) throws -> Void
    ) throws {
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: "SELECT \(Self.eventColumns) FROM events WHERE position >= ? ORDER BY position LIMIT ?"),
            arguments: [from, limit])
        while let row = try rows.next() {
            try body(ProjectedEvent(event: try self.decodeRecord(row, db: db), streamKey: row[4]))
        }
    }

    /// A catch-up step on a log read through `events`: it calls its third argument with each
    /// event from position `from` on, `limit` at most, in order.
    static func catchUpStep(
        _ session: any SQLSession, limit: Int,
        events: (Int64, Int, (ProjectedEvent) throws -> Void) throws -> Void
    ) throws -> ProjectionProgress? {
        let head = try ChainHead.position(session)
        let checkpoints = try ProjectionCheckpoints.fetchAll(session)
        let lagging = Self.projections.filter { (checkpoints[$0.name]?.position ?? 0) < head }
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
