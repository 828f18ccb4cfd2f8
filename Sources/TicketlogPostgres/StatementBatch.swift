import Synchronization
import Ticketlog

/// Statements sent ahead (``SQLSession/send(_:_:)``) turned into as few as PostgreSQL needs:
/// `INSERT … VALUES (…)` statements with the same text become one multi-row insert. postgres-nio
/// runs one statement at a time per connection (a round trip each), so a transaction of 1,000
/// single-event appends goes from thousands of statements to a handful.
///
/// Merging moves a later insert up to the first of its kind, past the statements sent between
/// them. That is only done where it cannot change what the transaction does:
/// - only plain inserts, or inserts that do nothing on a conflict (the first row stays, as when
///   they ran one by one); an upsert that updates, or one that returns rows, is sent as it is;
/// - never past a statement on the same table (an update, a delete, another kind of insert),
///   nor past one whose table is not known (savepoints, functions): those close the batches
///   they would be moved past;
/// - inserts into different tables commute: the log's tables have no triggers on insert and no
///   foreign keys (``PostgresSchema``).
struct StatementBatch {
    struct Statement: Equatable {
        var sql: String
        var arguments: [SQLValue]
        /// What follows the rows (`ON CONFLICT … DO NOTHING`), when they are merged.
        var tail = ""
        /// For an insert others may join (`sql` up to the end of its first row): the text
        /// before `VALUES`, its row, and how many rows were merged.
        var insert: (prefix: String, tuple: String, rows: Int)?

        /// The statement as a `VALUES` list of every merged row: built only when it is sent
        /// that way (``arrays()`` is the usual form of a merged insert).
        var text: String {
            guard let insert, insert.rows > 1 else { return sql + tail }
            return sql + String(repeating: ", " + insert.tuple, count: insert.rows - 1) + tail
        }

        static func == (a: Statement, b: Statement) -> Bool {
            a.text == b.text && a.arguments == b.arguments
        }

        /// A merged insert as one short statement whose parameters are arrays, one per column:
        /// `INSERT INTO t(…) SELECT <row over u.c1…> FROM unnest($1, …) AS u(c1, …) <tail>`.
        /// PostgreSQL parses and plans a few dozen characters instead of a `VALUES` list of
        /// thousands of parameters, and decodes each array in one go. `nil` for a single row, or
        /// when a column holds values of several types or only NULLs (its array type is unknown).
        func arrays() -> (sql: String, columns: [ArrayColumn])? {
            guard let insert, insert.rows > 1, !arguments.isEmpty, arguments.count % insert.rows == 0 else {
                return nil
            }
            let width = arguments.count / insert.rows
            var columns: [ArrayColumn] = []
            columns.reserveCapacity(width)
            for column in 0..<width {
                let values = (0..<insert.rows).map { arguments[$0 * width + column] }
                guard let array = ArrayColumn(values) else { return nil }
                columns.append(array)
            }
            // The row's placeholders become the columns of `u`, in order.
            let select = PostgresSession.replacingPlaceholders(in: insert.tuple.dropFirst().dropLast()) { "u.c\($0)" }
            let names = (1...width).map { "c\($0)" }.joined(separator: ", ")
            let parameters = Array(repeating: "?", count: width).joined(separator: ", ")
            return (
                "\(insert.prefix)SELECT \(select) FROM unnest(\(parameters)) AS u(\(names))\(tail)", columns
            )
        }
    }

    /// One column of a merged insert, bound as one array parameter.
    struct ArrayColumn {
        enum Kind { case integer, real, text, blob }
        var kind: Kind
        var values: [SQLValue]

        init(kind: Kind, values: [SQLValue]) {
            self.kind = kind
            self.values = values
        }

        /// `values` as one column, when they are all of one kind (NULLs aside) and not all NULL.
        init?(_ values: [SQLValue]) {
            var kind: Kind?
            for value in values {
                let valueKind: Kind?
                switch value {
                case .null: valueKind = nil
                case .integer: valueKind = .integer
                case .real: valueKind = .real
                case .text: valueKind = .text
                case .blob: valueKind = .blob
                }
                guard let valueKind else { continue }
                guard kind == nil || kind == valueKind else { return nil }
                kind = valueKind
            }
            guard let kind else { return nil }
            self.init(kind: kind, values: values)
        }
    }

    /// PostgreSQL's limit on the parameters of one statement.
    static let maximumParameters = 65_535

    private var statements: [Statement] = []
    /// Open batches: the index in `statements` of the insert that later ones with the same text
    /// join, by that text; and the table each one writes.
    private var open: [String: (index: Int, table: String)] = [:]

    var isEmpty: Bool { statements.isEmpty }
    /// The parameters of the statements kept.
    private(set) var parameters = 0

    mutating func add(_ sql: String, _ arguments: [SQLValue]) {
        parameters += arguments.count
        let shape = Shape.of(sql)
        // A statement on a table closes the batches into that table (but its own); one on no
        // known table closes them all.
        if let table = shape.table {
            for (text, batch) in open where batch.table == table && (text != sql || shape.mergeable == nil) {
                open[text] = nil
            }
        } else if !open.isEmpty {
            open.removeAll(keepingCapacity: true)
        }
        guard let values = shape.mergeable, let table = shape.table, arguments.count == values.parameters,
            arguments.count > 0
        else {
            statements.append(Statement(sql: sql, arguments: arguments))
            return
        }
        if let batch = open[sql],
            let rows = statements[batch.index].insert?.rows,
            (rows + 1) * arguments.count <= Self.maximumParameters
        {
            statements[batch.index].arguments += arguments
            statements[batch.index].insert?.rows += 1
        } else {
            open[sql] = (statements.count, table)
            statements.append(
                Statement(
                    sql: values.head, arguments: arguments, tail: values.tail,
                    insert: (values.prefix, values.tuple, 1)))
        }
    }

    /// The statements to send, in order; the batch is empty afterwards.
    mutating func take() -> [Statement] {
        defer {
            statements = []
            open = [:]
            parameters = 0
        }
        return statements
    }

    /// What merging needs to know of a statement's text.
    struct Shape: Sendable {
        /// Shapes read so far, by text: the log sends a few dozen texts over and over. (Texts
        /// beyond the first thousand are read each time.)
        private static let known = Mutex<[String: Shape]>([:])

        static func of(_ sql: String) -> Shape {
            if let shape = known.withLock({ $0[sql] }) { return shape }
            let shape = Shape(sql)
            known.withLock { known in if known.count < 1_000 { known[sql] = shape } }
            return shape
        }

        /// The table it writes (`INSERT INTO t`, `UPDATE t`, `DELETE FROM t`), `nil` otherwise.
        var table: String?
        /// For an insert that may be merged: the text up to the end of its row, its `(…)` row,
        /// what follows the row (`ON CONFLICT … DO NOTHING` or nothing) and how many
        /// placeholders the row has.
        var mergeable: (prefix: String, head: String, tuple: String, tail: String, parameters: Int)?

        init(_ sql: String) {
            // The first three words only: a statement's text can run to thousands of rows.
            let words = Self.firstWords(sql, 3)
            let name: Substring?
            switch (words.first?.uppercased(), words.dropFirst().first?.uppercased()) {
            case ("INSERT", "INTO"?), ("DELETE", "FROM"?):
                name = words.dropFirst(2).first
            case ("UPDATE", _):
                name = words.dropFirst().first
            default:
                name = nil
            }
            table = name.map { String($0.prefix { $0 != "(" }) }.flatMap { $0.isEmpty ? nil : $0 }
            guard words.first == "INSERT", table != nil else { return }
            mergeable = Self.row(of: sql)
        }

        /// Up to `count` whitespace-separated words from the start of `sql`, without reading further.
        static func firstWords(_ sql: String, _ count: Int) -> [Substring] {
            var words: [Substring] = []
            var rest = sql[...]
            while words.count < count {
                rest = rest.drop { $0.isWhitespace }
                guard !rest.isEmpty else { break }
                let word = rest.prefix { !$0.isWhitespace }
                words.append(word)
                rest = rest[word.endIndex...]
            }
            return words
        }

        /// The `(…)` after `VALUES` when it is the insert's only row and what follows it keeps
        /// the meaning of a multi-row insert: nothing, or `ON CONFLICT … DO NOTHING`.
        private static func row(of sql: String) -> (
            prefix: String, head: String, tuple: String, tail: String, parameters: Int
        )? {
            guard let values = sql.range(of: "VALUES", options: [.caseInsensitive]) else { return nil }
            let rest = sql[values.upperBound...].drop { $0.isWhitespace }
            guard rest.first == "(" else { return nil }
            var depth = 0
            var quote: Character?
            var parameters = 0
            var end: String.Index?
            for index in rest.indices {
                let character = rest[index]
                if let open = quote {
                    if character == open { quote = nil }
                    continue
                }
                switch character {
                case "'", "\"": quote = character
                case "?": parameters += 1
                case "(": depth += 1
                case ")":
                    depth -= 1
                    if depth == 0 { end = index }
                default: break
                }
                if end != nil { break }
            }
            guard let end else { return nil }
            let tail = rest[rest.index(after: end)...]
            // Read word by word only what may be `ON CONFLICT … DO NOTHING`: a statement of many
            // rows (its second row follows) is not merged, and its rest can run long.
            let start = tail.drop { $0.isWhitespace }
            guard start.isEmpty || start.prefix(2).uppercased() == "ON" else { return nil }
            let words = tail.split(whereSeparator: \.isWhitespace).map { $0.uppercased() }
            guard words.isEmpty || (words.first == "ON" && words.suffix(2) == ["DO", "NOTHING"]),
                !words.contains("RETURNING"), !tail.contains(";")
            else { return nil }
            return (
                String(sql[..<values.lowerBound]), String(sql[...end]), String(rest[...end]), String(tail), parameters
            )
        }
    }
}
