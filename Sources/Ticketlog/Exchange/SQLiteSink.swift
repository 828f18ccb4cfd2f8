import GRDB

/// A flat SQLite database an analyst can query: one table per exported table, typed columns,
/// rows inserted in transactions of 10,000.
struct SQLiteSink: TabularSink {
    private let queue: DatabaseQueue
    private var insert: String = ""
    private var pending: [[ExportValue]] = []

    init(path: String) throws {
        queue = try DatabaseQueue(path: path, configuration: EventStore.databaseConfiguration())
    }

    mutating func begin(_ table: String, columns: [(name: String, type: String)]) throws {
        try flush()
        let definition = columns.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
        try queue.write { db in try db.execute(sql: "CREATE TABLE \(table) (\(definition))") }
        insert = "INSERT INTO \(table) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
    }

    mutating func write(_ row: [ExportValue]) throws {
        pending.append(row)
        if pending.count >= 10_000 { try flush() }
    }

    mutating func finish() throws {
        try flush()
        try queue.write { db in
            try db.execute(sql: "CREATE INDEX events_by_stream ON events(stream, version)")
            try db.execute(sql: "CREATE INDEX events_by_type ON events(type)")
        }
    }

    private mutating func flush() throws {
        guard !pending.isEmpty else { return }
        let rows = pending
        let sql = insert
        pending.removeAll(keepingCapacity: true)
        try queue.write { db in
            let statement = try db.makeStatement(sql: sql)
            for row in rows {
                try statement.execute(
                    arguments: StatementArguments(
                        row.map { value -> (any DatabaseValueConvertible)? in
                            switch value {
                            case .null: nil
                            case .integer(let number): number
                            case .real(let number): number
                            case .text(let text): text
                            }
                        }))
            }
        }
    }
}
