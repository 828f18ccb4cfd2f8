import Foundation

/// Copies a log between backends row for row, written once above the storage boundary: the
/// same bodies, codecs, dictionaries, chain checks, Merkle nodes, checkpoints, content keys and
/// sync state, so both copies have the same head hash and `verify` passes on both. Projections
/// are not copied: they are derived, and the target builds its own.
package enum LogCopy {
    /// A table of the log proper (not a projection), with the columns that order it.
    package struct Table: Sendable {
        package var name: String
        package var columns: [String]
        package var key: [String]
    }

    /// The log's tables in an order in which every row's references already exist.
    package static let tables: [Table] = [
        Table(name: "dictionaries", columns: ["id", "created_at", "content"], key: ["id"]),
        Table(name: "streams", columns: ["key", "name", "version"], key: ["key"]),
        Table(name: "actors", columns: ["key", "id", "role"], key: ["key"]),
        Table(name: "event_types", columns: ["key", "name"], key: ["key"]),
        Table(
            name: "events",
            columns: LogTables.eventColumns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
            key: ["position"]),
        Table(name: "merkle_nodes", columns: ["level", "idx", "hash"], key: ["level", "idx"]),
        Table(name: "merkle_leaf_hints", columns: ["tile", "hints"], key: ["tile"]),
        Table(
            name: "checkpoints", columns: ["size", "key_id", "signed_at", "note", "verifier"],
            key: ["size", "key_id"]),
        Table(
            name: "content_keys",
            columns: ["id", "subject", "stream", "period", "wrapped", "created_at", "erased_at"], key: ["id"]),
        Table(name: "sync_cursors", columns: ["destination", "position"], key: ["destination"]),
        Table(name: "sync_marks", columns: ["destination", "key", "value"], key: ["destination", "key"]),
        Table(
            name: "sync_dead_letters", columns: ["destination", "position", "stream", "request", "reason", "at"],
            key: ["destination", "position"]),
    ]

    /// What a copy moved: rows per table, and the head both logs now have.
    package struct Summary: Sendable {
        package var rows: [(table: String, count: Int)] = []
        package var headPosition: Int64 = 0
        package var headHash: [UInt8] = []
    }

    /// Rows read per query and written per statement.
    static let pageSize = 1_000

    /// Copies every row of the log `source` reads into `target`, which holds an empty log
    /// (its schema and nothing else), then the meta rows that describe the log.
    ///
    /// - Throws: ``EventStoreError/Code/invalidEvent`` when the target already holds events.
    package static func copy(
        from source: any SQLSession, to target: any SQLSession,
        progress: ((_ table: String, _ rows: Int) -> Void)? = nil
    ) throws -> Summary {
        let targetTables = LogTables(target)
        guard try targetTables.eventCount() == 0 else {
            throw EventStoreError.invalid("the target already holds events: a copy goes into an empty log only")
        }
        let present = try LogTables(source).tableNames()
        var summary = Summary()
        for table in tables where present.contains(table.name) {
            let count = try copy(table, from: source, to: target, progress: progress)
            summary.rows.append((table.name, count))
        }
        for (key, value) in try LogTables(source).allMeta() {
            try targetTables.setMeta(key, value)
        }
        summary.headPosition = try targetTables.meta("head_position").integer ?? 0
        summary.headHash = try targetTables.meta("head_hash").blob ?? []
        return summary
    }

    private static func copy(
        _ table: Table, from source: any SQLSession, to target: any SQLSession,
        progress: ((String, Int) -> Void)?
    ) throws -> Int {
        let columns = table.columns.joined(separator: ", ")
        let order = table.key.joined(separator: ", ")
        let after = "(\(order)) > (\(table.key.map { _ in "?" }.joined(separator: ", ")))"
        let rowPlaceholder = "(" + table.columns.map { _ in "?" }.joined(separator: ", ") + ")"
        let keyIndexes = table.key.map { table.columns.firstIndex(of: $0)! }
        var last: [SQLValue]?
        var copied = 0
        while true {
            let page =
                if let last {
                    try source.rows(
                        "SELECT \(columns) FROM \(table.name) WHERE \(after) ORDER BY \(order) LIMIT ?",
                        last + [.integer(Int64(pageSize))])
                } else {
                    try source.rows(
                        "SELECT \(columns) FROM \(table.name) ORDER BY \(order) LIMIT ?", [.integer(Int64(pageSize))])
                }
            guard let lastRow = page.last else { break }
            let values = Array(repeating: rowPlaceholder, count: page.count).joined(separator: ", ")
            try target.execute(
                "INSERT INTO \(table.name)(\(columns)) VALUES \(values)", page.flatMap(\.values))
            copied += page.count
            progress?(table.name, copied)
            last = keyIndexes.map { lastRow[$0] }
            if page.count < pageSize { break }
        }
        return copied
    }
}
