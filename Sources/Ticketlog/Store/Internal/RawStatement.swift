import GRDB
import GRDBSQLite

/// A cached statement bound and stepped through SQLite's C API, for the inserts made once per
/// event: no `StatementArguments` or `DatabaseValue` boxes, no `Data` copies of the body.
///
/// Bypasses GRDB's per-statement bookkeeping (database observation, which the store does not
/// use); the statement is reset after each run, so GRDB can use it again as usual.
struct RawStatement {
    private let statement: Statement
    private let db: Database
    private var handle: OpaquePointer { statement.sqliteStatement }

    init(_ db: Database, sql: String) throws {
        statement = try db.cachedStatement(sql: sql)
        self.db = db
        sqlite3_reset(statement.sqliteStatement)
    }

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bind(index, text: $0, destructor: Self.transient) }
    }

    private func bind(_ index: Int32, text utf8: UnsafeBufferPointer<UInt8>, destructor: sqlite3_destructor_type?) {
        // An empty string needs a non-nil pointer, or SQLite stores NULL.
        let empty: CChar = 0
        withUnsafePointer(to: empty) { placeholder in
            _ = sqlite3_bind_text(
                handle, index, UnsafeRawPointer(utf8.baseAddress)?.assumingMemoryBound(to: CChar.self) ?? placeholder,
                Int32(utf8.count), destructor)
        }
    }

    func bind(_ index: Int32, blob bytes: UnsafeRawBufferPointer) {
        bind(index, blob: bytes, destructor: Self.transient)
    }

    /// Binds `bytes` to parameter `index` without SQLite copying them (they only have to stay
    /// valid while the statement runs, which is why binding and running are one call), then
    /// runs the statement as ``run()`` does. The parameter is set to NULL after, so the
    /// statement keeps no pointer to the bytes.
    func run(binding index: Int32, borrowedBlob bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { bytes in
            bind(index, blob: bytes, destructor: nil)  // SQLITE_STATIC
            defer { sqlite3_bind_null(handle, index) }
            try run()
        }
    }

    private func bind(_ index: Int32, blob bytes: UnsafeRawBufferPointer, destructor: sqlite3_destructor_type?) {
        // A zero-length blob needs a non-nil pointer, or SQLite stores NULL.
        let empty: UInt8 = 0
        withUnsafePointer(to: empty) { placeholder in
            _ = sqlite3_bind_blob(
                handle, index, bytes.baseAddress ?? UnsafeRawPointer(placeholder), Int32(bytes.count), destructor)
        }
    }

    /// Binds `arguments` to the parameters, in order, and runs the statement as ``run()`` does.
    /// Texts and blobs are bound where `arguments` holds them, not copied by SQLite (copying
    /// them was a tenth of each `messages` insert's CPU in a rebuild): they only have to stay
    /// valid while the statement runs, which is why binding and running are one call. The
    /// parameters are cleared after, so the statement keeps no pointer to them.
    func run(_ arguments: [SQLValue]) throws {
        defer { sqlite3_clear_bindings(handle) }
        try run(arguments, from: 0)
    }

    /// Binds `arguments[index...]` (each text or blob inside the closure that holds it valid),
    /// then runs.
    private func run(_ arguments: [SQLValue], from index: Int) throws {
        guard index < arguments.count else { return try run() }
        let parameter = Int32(index + 1)
        switch arguments[index] {
        case .text(var text):
            try text.withUTF8 { utf8 in
                bind(parameter, text: utf8, destructor: nil)  // SQLITE_STATIC
                try run(arguments, from: index + 1)
            }
        case .blob(let bytes):
            try bytes.withUnsafeBytes { bytes in
                bind(parameter, blob: bytes, destructor: nil)  // SQLITE_STATIC
                try run(arguments, from: index + 1)
            }
        case let value:
            bind(parameter, value)
            try run(arguments, from: index + 1)
        }
    }

    /// Binds `arguments` to the parameters, in order.
    func bind(_ arguments: [SQLValue]) {
        for (index, argument) in arguments.enumerated() { bind(Int32(index + 1), argument) }
    }

    func bind(_ index: Int32, blob bytes: [UInt8]) {
        bytes.withUnsafeBytes { bind(index, blob: $0) }
    }

    func bind(_ index: Int32, _ value: SQLValue) {
        switch value {
        case .null: sqlite3_bind_null(handle, index)
        case .integer(let integer): bind(index, integer)
        case .real(let real): sqlite3_bind_double(handle, index, real)
        case .text(let text): bind(index, text)
        case .blob(let bytes): bind(index, blob: bytes)
        }
    }

    /// Runs the statement to completion; SQLite's refusal as the `DatabaseError` GRDB would
    /// throw (same extended result code and message).
    func run() throws {
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            let error = currentError()
            sqlite3_reset(handle)
            throw error
        }
        sqlite3_reset(handle)
    }

    /// Runs the query and returns every row, each column as SQLite stores it (text and blobs
    /// copied once, straight from SQLite's buffers: no `Row`, `DatabaseValue` or `Data`).
    func rows() throws -> [SQLRow] {
        defer { sqlite3_reset(handle) }
        let columns = sqlite3_column_count(handle)
        var rows: [SQLRow] = []
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return rows }
            guard code == SQLITE_ROW else { throw currentError() }
            let row = RawRow(handle: handle)
            rows.append(SQLRow((0..<columns).map(row.value)))
        }
    }

    /// Runs a query of ``LogTables/eventColumns`` and returns its rows as ``StoredEventRow``s,
    /// read from SQLite's buffers column by column; a row with a column NULL or of another type
    /// (tampered: the table is `STRICT` and every column `NOT NULL`) is `nil`.
    func eventRows() throws -> [StoredEventRow?] {
        defer { sqlite3_reset(handle) }
        precondition(sqlite3_column_count(handle) == 11, "eventRows() reads LogTables.eventColumns")
        var rows: [StoredEventRow?] = []
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return rows }
            guard code == SQLITE_ROW else { throw currentError() }
            rows.append(eventRow())
        }
    }

    /// Runs the query, calling `body` with each row while the statement is on it: its columns
    /// read in place (``RawRow``), so a blob is not copied unless `body` copies it.
    func forEachRow(_ body: (RawRow) throws -> Void) throws {
        defer { sqlite3_reset(handle) }
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else { throw currentError() }
            try body(RawRow(handle: handle))
        }
    }

    private func eventRow() -> StoredEventRow? {
        for column in Self.integerColumns where sqlite3_column_type(handle, column) != SQLITE_INTEGER { return nil }
        for column in Self.blobColumns where sqlite3_column_type(handle, column) != SQLITE_BLOB { return nil }
        return StoredEventRow(
            position: sqlite3_column_int64(handle, 0), stream: sqlite3_column_int64(handle, 1),
            version: sqlite3_column_int64(handle, 2), id: blob(3), type: sqlite3_column_int64(handle, 4),
            actor: sqlite3_column_int64(handle, 5), occurredAt: sqlite3_column_int64(handle, 6),
            recordedAt: sqlite3_column_int64(handle, 7), codec: sqlite3_column_int64(handle, 8), blob: blob(9),
            check: blob(10))
    }

    private static let integerColumns: [Int32] = [0, 1, 2, 4, 5, 6, 7, 8]
    private static let blobColumns: [Int32] = [3, 9, 10]

    private func blob(_ column: Int32) -> [UInt8] {
        let bytes = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    }

    private func currentError() -> DatabaseError {
        let connection = db.sqliteConnection
        return DatabaseError(
            resultCode: ResultCode(rawValue: sqlite3_extended_errcode(connection)),
            message: String(cString: sqlite3_errmsg(connection)), sql: statement.sql)
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// The row a statement is on (``RawStatement/forEachRow(_:)``, or any stepped statement handle),
/// read column by column from SQLite's buffers. A column of another type than asked for (NULL
/// included) is `nil`.
struct RawRow {
    let handle: OpaquePointer

    /// The column as SQLite stores it (text and blobs copied once, straight from its buffers).
    func value(_ column: Int32) -> SQLValue {
        switch sqlite3_column_type(handle, column) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, column))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, column))
        case SQLITE_TEXT:
            let text = sqlite3_column_text(handle, column)
            let count = Int(sqlite3_column_bytes(handle, column))
            return .text(
                text.map { String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self) } ?? "")
        case SQLITE_BLOB: return .blob(blob(column).map { Array($0) } ?? [])
        default: return .null
        }
    }

    func integer(_ column: Int32) -> Int64? {
        sqlite3_column_type(handle, column) == SQLITE_INTEGER ? sqlite3_column_int64(handle, column) : nil
    }

    /// A blob column's bytes where SQLite holds them: valid until the statement steps on.
    func blob(_ column: Int32) -> UnsafeRawBufferPointer? {
        guard sqlite3_column_type(handle, column) == SQLITE_BLOB else { return nil }
        let bytes = sqlite3_column_blob(handle, column)
        return UnsafeRawBufferPointer(start: bytes, count: bytes == nil ? 0 : Int(sqlite3_column_bytes(handle, column)))
    }
}
