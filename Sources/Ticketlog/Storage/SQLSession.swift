import Foundation
import GRDB
import GRDBSQLite

/// A value bound to a statement or read from a row, as both backends store it.
package enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    package var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    package var text: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    package var blob: [UInt8]? {
        if case .blob(let value) = self { return value }
        return nil
    }

    package var isNull: Bool { self == .null }

    /// `.null` for `nil`.
    package static func optional(_ text: String?) -> SQLValue {
        text.map(SQLValue.text) ?? .null
    }

    /// `.null` for `nil`.
    package static func optional(_ integer: Int64?) -> SQLValue {
        integer.map(SQLValue.integer) ?? .null
    }
}

/// One row of a result: its values in the order the statement selected them.
package struct SQLRow: Sendable, Hashable {
    package var values: [SQLValue]

    package init(_ values: [SQLValue]) {
        self.values = values
    }

    package subscript(index: Int) -> SQLValue { values[index] }
}

/// The SQL dialect a session speaks, for the few statements the backends spell differently
/// (schema, catalog queries, upserts).
package enum SQLDialect: Sendable {
    case sqlite
    case postgres
}

/// One connection inside one transaction: the storage boundary the log's format code is written
/// above (ARCHITECTURE.md, "Storage boundary").
///
/// Statements use `?` placeholders, as SQLite does; the PostgreSQL session numbers them. What a
/// backend cannot share (DDL types, catalog queries, how positions are ordered between writers)
/// is chosen by ``dialect`` at the few places that need it.
package protocol SQLSession {
    var dialect: SQLDialect { get }
    /// Runs a statement that returns no rows; returns how many rows it inserted, changed or
    /// deleted.
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int
    /// Runs a statement whose result is not needed now: a backend may send it without waiting
    /// (PostgreSQL pipelines it, saving a round trip). Its failure surfaces at the next statement
    /// that waits, or at commit, as a storage failure of the whole transaction.
    func send(_ sql: String, _ arguments: [SQLValue]) throws
    /// Runs a query and returns every row (callers page large tables by position).
    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
    /// The rows of `sql`, which ends in `column IN`, for each of `values` (of one kind) in the
    /// list; no values, no rows. A backend may send the list its own way (PostgreSQL: one array
    /// parameter, `= ANY(…)`).
    func rows(_ sql: String, in values: [SQLValue]) throws -> [SQLRow]
    /// The event rows `sql` selects (``LogTables/eventColumns``, in that order), each `nil` where
    /// a column is NULL or of another type (only a tampered log has one). A backend may read them
    /// without boxing each value (SQLite: straight from the statement); the default goes through
    /// ``rows(_:_:)``.
    func eventRows(_ sql: String, _ arguments: [SQLValue]) throws -> [StoredEventRow?]
}

extension SQLSession {
    @discardableResult
    package func execute(_ sql: String) throws -> Int {
        try execute(sql, [])
    }

    /// The rows of `sql`, which ends in `IN`, for each of `values` in the list: in statements of
    /// at most 500 values (both engines cap a statement's parameters). No values, no rows.
    package func rows(_ sql: String, in values: [SQLValue]) throws -> [SQLRow] {
        try rowsInLists(sql, in: values)
    }

    package func eventRows(_ sql: String, _ arguments: [SQLValue]) throws -> [StoredEventRow?] {
        try rows(sql, arguments).map(StoredEventRow.init)
    }

    /// ``rows(_:in:)`` as `IN (?, ?, …)` lists of at most 500 values each.
    package func rowsInLists(_ sql: String, in values: [SQLValue]) throws -> [SQLRow] {
        var rows: [SQLRow] = []
        for start in stride(from: 0, to: values.count, by: 500) {
            let chunk = Array(values[start..<min(start + 500, values.count)])
            let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            rows += try self.rows("\(sql) (\(placeholders))", chunk)
        }
        return rows
    }

    /// The first row, or `nil`.
    package func row(_ sql: String, _ arguments: [SQLValue] = []) throws -> SQLRow? {
        try rows(sql, arguments).first
    }

    /// The first column of the first row, or `.null` when there is no row.
    package func value(_ sql: String, _ arguments: [SQLValue] = []) throws -> SQLValue {
        try row(sql, arguments)?.values.first ?? .null
    }
}

/// What a statement's text says about it.
enum SQLText {
    /// Whether `sql` is a `SELECT` (a read); any other statement counts as a write.
    static func isSelect(_ sql: String) -> Bool {
        let start = sql.utf8.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }
        return start.prefix(6).map { $0 | 0x20 }.elementsEqual("select".utf8)
    }
}

/// An SQLite connection (GRDB) as a session.
package struct SQLiteSession: SQLSession {
    package let db: Database
    /// Opened before the first statement that writes, when set: a decision's (``EventStore/LazySavepoint``).
    let savepoint: EventStore.LazySavepoint?

    package init(_ db: Database) {
        self.db = db
        savepoint = nil
    }

    /// A session whose first write opens `savepoint` (a decision's: one that only reads, as
    /// every command's does, costs no `SAVEPOINT`).
    init(_ db: Database, savepoint: EventStore.LazySavepoint) {
        self.db = db
        self.savepoint = savepoint
    }

    package var dialect: SQLDialect { .sqlite }

    /// A statement with arguments is bound through SQLite's C API (``RawStatement``): no
    /// `DatabaseValue` boxes on the projections' per-event statements. One without (schema,
    /// savepoints) goes through GRDB, which keeps track of transactions and savepoints.
    @discardableResult
    package func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try savepoint?.open()
        guard !arguments.isEmpty else {
            try db.execute(sql: sql)
            return db.changesCount
        }
        try RawStatement(db, sql: sql).run(arguments)
        return Int(sqlite3_changes(db.sqliteConnection))
    }

    /// SQLite runs in the process: nothing to save by not waiting (nor to count).
    package func send(_ sql: String, _ arguments: [SQLValue]) throws {
        try savepoint?.open()
        guard !arguments.isEmpty else { return try db.execute(sql: sql) }
        try RawStatement(db, sql: sql).run(arguments)
    }

    /// Through SQLite's C API too (``RawStatement/rows()``): reading a page of events through
    /// GRDB's `Row` and `DatabaseValue` boxes was an eighth of `verify`.
    package func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        if let savepoint, !SQLText.isSelect(sql) { try savepoint.open() }
        let statement = try RawStatement(db, sql: sql)
        statement.bind(arguments)
        return try statement.rows()
    }

    /// Event rows read column by column from the statement (``RawStatement/eventRows()``): no
    /// array of boxed values per row. `verify` reads every event so, as do a page of messages
    /// (`EventStore.events(at:_:)`) and the readers written above the storage boundary.
    package func eventRows(_ sql: String, _ arguments: [SQLValue]) throws -> [StoredEventRow?] {
        if let savepoint, !SQLText.isSelect(sql) { try savepoint.open() }
        let statement = try RawStatement(db, sql: sql)
        statement.bind(arguments)
        return try statement.eventRows()
    }

    static func databaseValue(_ value: SQLValue) -> DatabaseValue {
        switch value {
        case .null: .null
        case .integer(let integer): integer.databaseValue
        case .real(let real): real.databaseValue
        case .text(let text): text.databaseValue
        case .blob(let bytes): Data(bytes).databaseValue
        }
    }

}
