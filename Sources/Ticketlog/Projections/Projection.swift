import GRDB

/// A read model kept in the log's file and updated in the same transaction as the events it
/// reflects, so a read after an append sees the append.
///
/// A projection is a fold: `apply` turns one event into row changes, nothing else. Its rows can
/// be dropped and rebuilt from position 1 at any time and come out identical to the rows kept
/// up incrementally. Bump ``version`` whenever ``apply`` or the tables change: a projection
/// whose stored version differs is rebuilt when the log is opened.
protocol Projection: Sendable {
    /// A stable name, the key of its checkpoint.
    var name: String { get }
    var version: Int { get }
    /// The tables this projection owns, in an order in which they can be dropped.
    var tables: [String] { get }
    /// Creates the tables (and indexes) in a file that has none of them.
    func createSchema(_ db: Database) throws
    /// Deletes every row (keeping the tables), for a rebuild.
    func clear(_ db: Database) throws
    /// Applies one event. Events arrive in position order, each exactly once.
    func apply(_ event: ProjectedEvent, _ db: Database) throws
    /// The projection's work within one write transaction (default: each event applied as it
    /// comes). A projection whose rows many events of a transaction touch can keep them in
    /// memory and write each once, in ``ProjectionTransaction/finish(_:)``.
    func begin() -> any ProjectionTransaction
}

/// A projection's work within one write transaction. What it keeps in memory rolls back with
/// the rows: the writer calls ``beginAppend()`` before each append and ``rollBackAppend()`` when
/// the append's savepoint rolls back.
protocol ProjectionTransaction {
    mutating func apply(_ event: ProjectedEvent, _ db: Database) throws
    /// Writes what was kept for the end of the transaction.
    mutating func finish(_ db: Database) throws
    mutating func beginAppend()
    /// Forgets what the events since ``beginAppend()`` changed in memory.
    mutating func rollBackAppend()
}

extension ProjectionTransaction {
    func beginAppend() {}
    func rollBackAppend() {}
}

/// Each event applied as it comes.
struct ImmediateProjectionTransaction: ProjectionTransaction {
    let projection: any Projection

    func apply(_ event: ProjectedEvent, _ db: Database) throws {
        try projection.apply(event, db)
    }

    func finish(_ db: Database) throws {}
}

/// The projections' work in one write transaction, in the order of the projections.
struct ProjectionSession {
    private var transactions: [any ProjectionTransaction]

    init(_ projections: [any Projection]) {
        transactions = projections.map { $0.begin() }
    }

    var isEmpty: Bool { transactions.isEmpty }

    mutating func apply(_ event: ProjectedEvent, _ db: Database) throws {
        for index in transactions.indices { try transactions[index].apply(event, db) }
    }

    mutating func finish(_ db: Database) throws {
        for index in transactions.indices { try transactions[index].finish(db) }
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

    func dropSchema(_ db: Database) throws {
        for table in tables { try db.execute(sql: "DROP TABLE IF EXISTS \(table)") }
    }

    /// Deletes every row (keeping the tables), for a rebuild.
    func clear(_ db: Database) throws {
        for table in tables { try db.execute(sql: "DELETE FROM \(table)") }
    }
}
