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
        try await writeMapped("could not reset projections") { db in
            for projection in selected {
                try projection.clear(db)
                try ProjectionCheckpoints.save(projection, position: 0, db)
            }
        }
        try await catchUpProjections(progress: progress)
    }

    /// Applies the events each projection has not seen yet, in transactions of a few thousand
    /// events. Opening a log does this for projections that are behind (e.g. new in this build).
    public func catchUpProjections(progress: (@Sendable (ProjectionProgress) -> Void)? = nil) async throws {
        while true {
            let step = try await writeMapped("could not update projections") { db in
                try self.catchUpStep(db, limit: self.configuration.projectionBatchSize)
            }
            if let step { progress?(step) } else { return }
        }
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

    /// Creates missing projection tables and resets those whose version changed. Runs at open.
    static func prepareProjections(_ db: Database) throws {
        try ProjectionCheckpoints.createTable(db)
        let stored = try ProjectionCheckpoints.fetchAll(db)
        for projection in projections {
            switch stored[projection.name] {
            case .some(let checkpoint) where checkpoint.version == projection.version:
                continue
            case .some:
                try projection.dropSchema(db)
                fallthrough
            case .none:
                try projection.createSchema(db)
                try ProjectionCheckpoints.save(projection, position: 0, db)
            }
        }
    }

    /// Applies up to `limit` events to the projections that are behind, oldest first. Returns
    /// `nil` when every projection is at the head.
    func catchUpStep(_ db: Database, limit: Int) throws -> ProjectionProgress? {
        let head = try ChainHead.position(db)
        let checkpoints = try ProjectionCheckpoints.fetchAll(db)
        let lagging = Self.projections.filter { (checkpoints[$0.name]?.position ?? 0) < head }
        guard !lagging.isEmpty else { return nil }
        let from = lagging.map { checkpoints[$0.name]?.position ?? 0 }.min()! + 1
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql:
                    "SELECT \(Self.eventColumns) FROM events WHERE position >= ? ORDER BY position LIMIT ?"
            ),
            arguments: [from, limit])
        var last = from - 1
        // Per projection: a session, and the position it has applied up to.
        var sessions = lagging.map { (session: ProjectionSession([$0]), after: checkpoints[$0.name]?.position ?? 0) }
        while let row = try rows.next() {
            let projected = ProjectedEvent(event: try decodeRecord(row, db: db), streamKey: row[4])
            for index in sessions.indices where sessions[index].after < projected.event.position {
                try sessions[index].session.apply(projected, db)
            }
            last = projected.event.position
        }
        for index in sessions.indices { try sessions[index].session.finish(db) }
        for projection in lagging {
            try ProjectionCheckpoints.save(
                projection, position: max(last, checkpoints[projection.name]?.position ?? 0), db)
        }
        return ProjectionProgress(position: last, headPosition: head, projections: lagging.map(\.name))
    }

    /// The projections whose checkpoint is `head`: the ones appends keep up inline.
    static func liveProjections(_ db: Database, head: Int64) throws -> [any Projection] {
        let checkpoints = try ProjectionCheckpoints.fetchAll(db)
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

    static func createTable(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS projection_checkpoints (
                    name TEXT PRIMARY KEY NOT NULL,
                    version INTEGER NOT NULL,
                    position INTEGER NOT NULL
                ) WITHOUT ROWID, STRICT
                """)
    }

    static func fetchAll(_ db: Database) throws -> [String: Checkpoint] {
        var result: [String: Checkpoint] = [:]
        for row in try Row.fetchAll(
            db.cachedStatement(sql: "SELECT name, version, position FROM projection_checkpoints"))
        {
            result[row[0]] = Checkpoint(version: row[1], position: row[2])
        }
        return result
    }

    static func save(_ projection: any Projection, position: Int64, _ db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO projection_checkpoints(name, version, position) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET version = excluded.version, position = excluded.position
                """
        ).execute(arguments: [projection.name, projection.version, position])
    }
}
