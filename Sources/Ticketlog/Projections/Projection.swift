/// A read model kept in the log's database and updated in the same transaction as the events it
/// reflects, so a read after an append sees the append.
///
/// A projection is a fold: `apply` turns one event into row changes, nothing else. Its rows can
/// be dropped and rebuilt from position 1 at any time and come out identical to the rows kept
/// up incrementally. Bump ``version`` whenever ``apply`` or the tables change: a projection
/// whose stored version differs is rebuilt when the log is opened.
///
/// Written once over the storage boundary (``SQLSession``): the same statements run in the
/// append's transaction on SQLite and on PostgreSQL; only the schema (``schema(_:)``) and the
/// full-text index (``MessageSearchIndex``) differ by dialect.
protocol Projection: Sendable {
    /// A stable name, the key of its checkpoint.
    var name: String { get }
    var version: Int { get }
    /// The tables this projection owns in an SQLite file, in an order in which they can be
    /// dropped.
    var tables: [String] { get }
    /// The same in a database of `dialect` (default: ``tables``).
    func tables(_ dialect: SQLDialect) -> [String]
    /// The statements that create the tables (and indexes) in a database that has none of them.
    func schema(_ dialect: SQLDialect) -> [String]
    /// Deletes every row (keeping the tables), for a rebuild.
    func clear(_ session: any SQLSession) throws
    /// Applies one event. Events arrive in position order, each exactly once.
    func apply(_ event: ProjectedEvent, _ session: any SQLSession) throws
    /// The projection's work within one write transaction (default: each event applied as it
    /// comes). A projection whose rows many events of a transaction touch can keep them in
    /// memory and write each once, in ``ProjectionTransaction/finish(_:)``.
    func begin() -> any ProjectionTransaction
}

/// A projection's work within one write transaction. What it keeps in memory rolls back with
/// the rows: SQLite's writer calls ``beginAppend()`` before each append and ``rollBackAppend()``
/// when the append's savepoint rolls back. PostgreSQL's (``LogWriter``) calls neither: it decides
/// everything that can refuse an append before the append writes.
protocol ProjectionTransaction {
    /// Reads in one statement what the transaction's events will need of the rows of
    /// `streams` (default: nothing; rows are then read as events need them). A writer whose
    /// statements travel together (PostgreSQL) calls it once per transaction, so that no read
    /// in between holds them up.
    mutating func prefetch(streams: [Int64], _ session: any SQLSession) throws
    /// `stream` was created in this transaction: it has no rows yet, none to read.
    mutating func created(stream: Int64)
    mutating func apply(_ event: ProjectedEvent, _ session: any SQLSession) throws
    /// Writes what was kept for the end of the transaction.
    mutating func finish(_ session: any SQLSession) throws
    /// Writes what was kept that a decision may read, before it reads the projections in the
    /// middle of a transaction (default: ``finish(_:)``). What no decision reads may wait for
    /// the transaction's end.
    mutating func finishForDecision(_ session: any SQLSession) throws
    mutating func beginAppend()
    /// Forgets what the events since ``beginAppend()`` changed in memory.
    mutating func rollBackAppend()
}

/// What the current append changed of a ``ProjectionTransaction``'s memory: each key's value
/// before the append first changed it, put back when the append's savepoint rolls back. Whether a
/// key is held already is a set lookup, not a scan: a catch-up's transaction of 15,000 events
/// over hundreds of tickets is one append.
struct AppendUndo<Key: Hashable, Value> {
    private var entries: [(key: Key, value: Value)] = []
    private var keys = Set<Key>()

    /// Remembers `value` as `key`'s before this append, unless the append changed `key` before.
    mutating func remember(_ key: Key, _ value: @autoclosure () -> Value) {
        if keys.insert(key).inserted { entries.append((key, value())) }
    }

    /// The values remembered, latest first; then forgets them.
    mutating func rollBack() -> [(key: Key, value: Value)] {
        defer { forget() }
        return entries.reversed()
    }

    mutating func forget() {
        entries.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
    }
}

extension ProjectionTransaction {
    func prefetch(streams: [Int64], _ session: any SQLSession) throws {}
    func created(stream: Int64) {}
    func beginAppend() {}
    func rollBackAppend() {}
    mutating func finishForDecision(_ session: any SQLSession) throws { try finish(session) }
}

/// A projection whose work is done by its transaction type: ``Projection/apply(_:_:)`` runs one
/// event as a transaction of its own, ``Projection/begin()`` starts one for many.
protocol TransactionalProjection: Projection {
    associatedtype Work: ProjectionTransaction
    func transaction() -> Work
}

extension TransactionalProjection {
    func apply(_ projected: ProjectedEvent, _ session: any SQLSession) throws {
        var work = transaction()
        try work.apply(projected, session)
        try work.finish(session)
    }

    func begin() -> any ProjectionTransaction {
        transaction()
    }
}

/// Each event applied as it comes.
struct ImmediateProjectionTransaction: ProjectionTransaction {
    let projection: any Projection

    func apply(_ event: ProjectedEvent, _ session: any SQLSession) throws {
        try projection.apply(event, session)
    }

    func finish(_ session: any SQLSession) throws {}
}

/// The projections' work in one write transaction, in the order of the projections.
struct ProjectionSession {
    private var transactions: [any ProjectionTransaction]

    init(_ projections: [any Projection]) {
        transactions = projections.map { $0.begin() }
    }

    var isEmpty: Bool { transactions.isEmpty }

    mutating func apply(_ event: ProjectedEvent, _ session: any SQLSession) throws {
        for index in transactions.indices { try transactions[index].apply(event, session) }
    }

    mutating func finish(_ session: any SQLSession) throws {
        for index in transactions.indices { try transactions[index].finish(session) }
    }

    /// Before a decision reads the projections: see ``ProjectionTransaction/finishForDecision(_:)``.
    mutating func finishForDecision(_ session: any SQLSession) throws {
        for index in transactions.indices { try transactions[index].finishForDecision(session) }
    }

    mutating func prefetch(streams: [Int64], _ session: any SQLSession) throws {
        guard !streams.isEmpty else { return }
        for index in transactions.indices { try transactions[index].prefetch(streams: streams, session) }
    }

    mutating func created(stream: Int64) {
        for index in transactions.indices { transactions[index].created(stream: stream) }
    }

    mutating func beginAppend() {
        for index in transactions.indices { transactions[index].beginAppend() }
    }

    mutating func rollBackAppend() {
        for index in transactions.indices { transactions[index].rollBackAppend() }
    }
}

/// An event as projections see it: the event plus its stream's integer key, which projection
/// tables use instead of the stream name.
struct ProjectedEvent {
    var event: RecordedEvent
    var streamKey: Int64
}

extension Projection {
    func begin() -> any ProjectionTransaction {
        ImmediateProjectionTransaction(projection: self)
    }

    func tables(_ dialect: SQLDialect) -> [String] { tables }

    /// The tables whose rows can be read and compared (the projection check, the tests): all of
    /// ``tables(_:)`` but SQLite's full-text index, which cannot be scanned (contentless, without
    /// document sizes) and is compared through its vocabulary (``MessageSearchIndex/terms``).
    func readableTables(_ dialect: SQLDialect) -> [String] {
        tables(dialect).filter { dialect != .sqlite || $0 != MessageSearchIndex.table }
    }

    func dropSchema(_ session: any SQLSession) throws {
        for table in tables(session.dialect) { try session.execute("DROP TABLE IF EXISTS \(table)") }
    }

    func createSchema(_ session: any SQLSession) throws {
        for statement in schema(session.dialect) { try session.execute(statement) }
    }

    /// Deletes every row (keeping the tables), for a rebuild.
    func clear(_ session: any SQLSession) throws {
        for table in tables(session.dialect) { try session.execute("DELETE FROM \(table)") }
    }
}

extension SQLDialect {
    /// A `CREATE TABLE` or `CREATE INDEX` statement written for SQLite, in this dialect. The
    /// projections' tables use few types, so the translation is small: PostgreSQL gets `bigint`
    /// for `INTEGER` (its `integer` is 32 bits) and no SQLite table options (`STRICT`,
    /// `WITHOUT ROWID`: its tables are typed and clustered on nothing either way).
    func schema(_ sqlite: String) -> String {
        switch self {
        case .sqlite:
            return sqlite
        case .postgres:
            return
                sqlite
                .replacingOccurrences(of: " INTEGER", with: " bigint")
                .replacingOccurrences(of: ") WITHOUT ROWID, STRICT", with: ")")
                .replacingOccurrences(of: ") STRICT", with: ")")
        }
    }
}
