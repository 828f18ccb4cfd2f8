import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization
import Ticketlog

/// One PostgreSQL connection inside one transaction, as the storage boundary's session.
///
/// The log's format code is synchronous (it runs inside SQLite's transactions as it is), so
/// this session blocks its thread on each statement's future. It is only ever used on the
/// log's own dispatch queue (``PostgresLog``), never on an event loop, which `wait()` checks.
final class PostgresSession: SQLSession {
    let connection: PostgresConnection
    let logger: Logger
    let location: PostgresLocation

    init(connection: PostgresConnection, location: PostgresLocation, logger: Logger) {
        self.connection = connection
        self.location = location
        self.logger = logger
    }

    var dialect: SQLDialect { .postgres }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try Self.refuseNUL(arguments)
        return try run(sql, arguments).metadata.rows ?? 0
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        try Self.refuseNUL(arguments)
        return try run(sql, arguments).map { row in SQLRow(try row.map(Self.value)) }
    }

    /// One statement whatever the number of values: the list goes as one array parameter
    /// (`column = ANY($1)`), which PostgreSQL parses and plans once instead of a list of hundreds
    /// of parameters (a third of an append transaction's reads before it writes, measured).
    /// Values of mixed kinds, or only NULLs, go as `IN` lists.
    func rows(_ sql: String, in values: [SQLValue]) throws -> [SQLRow] {
        guard !values.isEmpty else { return [] }
        guard sql.hasSuffix(" IN"), values.count > 1,
            let column = StatementBatch.ArrayColumn(values)
        else { return try rowsInLists(sql, in: values) }
        try Self.refuseNUL(values)
        try settle()
        var binds = PostgresBindings(capacity: 1)
        binds.append(PostgresArray(column))
        let query = PostgresQuery(unsafeSQL: Self.numbered(sql.dropLast(3) + " = ANY(?)"), binds: binds)
        do {
            return try answer(connection.query(query, logger: logger)).map { row in
                SQLRow(try row.map(Self.value))
            }
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
    }

    /// PostgreSQL's text cannot hold the NUL character (SQLite's can): a value with one is
    /// refused as the input it is (``EventStoreError/Code/invalidEvent``, a 400 at the API),
    /// before anything is sent, rather than failing the transaction as a storage failure.
    static func refuseNUL(_ arguments: [SQLValue]) throws {
        for case .text(let text) in arguments where text.utf8.contains(0) {
            throw EventStoreError.invalid("a text holds the NUL character, which PostgreSQL does not store")
        }
    }

    /// Statements sent and not handed to the connection yet: merged into multi-row inserts
    /// where that keeps their meaning (``StatementBatch``), and sent before the next statement
    /// that waits.
    private var batch = StatementBatch()
    /// Statements handed to the connection and not waited for yet, in the order they were sent
    /// (the connection answers in that order).
    private var pending: [EventLoopFuture<PostgresQueryResult>] = []

    /// Keeps the statement for the next one that waits (``settle()``): statements sent one
    /// after the other travel together.
    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        try Self.refuseNUL(arguments)
        batch.add(sql, arguments)
        // A large transaction hands over what it kept every so often without waiting, so that
        // the server works on it while this side prepares the rest — soon when the server has
        // nothing of this transaction's to work on.
        if batch.parameters >= (pending.isEmpty ? Self.firstHandOverParameters : Self.handOverParameters) {
            handOver()
        }
    }

    /// About 500 events' statements.
    static let handOverParameters = 8_192
    /// About 60 events' statements.
    static let firstHandOverParameters = 1_024

    /// Hands the statements kept to the connection without waiting for them: consecutive
    /// writes to different tables as one statement (``runs(_:)``, ``combined(_:)``), since each
    /// statement is a round trip of its own.
    private func handOver() {
        for run in Self.runs(batch.take().map(Part.init)) {
            pending.append(connection.query(Self.combined(run), logger: logger))
        }
    }

    /// `parts` in order, grouped into the runs sent as one statement each: consecutive writes,
    /// each to a table no other write of its run writes, within PostgreSQL's limit of
    /// parameters; anything else (a savepoint, a function) alone.
    static func runs(_ parts: [Part]) -> [[Part]] {
        var runs: [[Part]] = []
        var run: [Part] = []
        var tables: Set<String> = []
        var parameters = 0
        for part in parts {
            if let table = part.table, !tables.contains(table),
                parameters + part.parameters <= StatementBatch.maximumParameters
            {
                run.append(part)
                tables.insert(table)
                parameters += part.parameters
                continue
            }
            if !run.isEmpty { runs.append(run) }
            if let table = part.table {
                (run, tables, parameters) = ([part], [table], part.parameters)
            } else {
                runs.append([part])
                (run, tables, parameters) = ([], [], 0)
            }
        }
        if !run.isEmpty { runs.append(run) }
        return runs
    }

    /// A statement sent ahead as it goes on the wire: its text with `?` placeholders, what
    /// binds them, and the table it writes (`nil`: not a write to one table).
    struct Part {
        var sql: String
        var arguments: [SQLValue] = []
        var columns: [StatementBatch.ArrayColumn] = []
        var table: String?
        var parameters: Int { columns.isEmpty ? arguments.count : columns.count }

        init(_ statement: StatementBatch.Statement) {
            if let (sql, columns) = statement.arrays() {
                self.sql = sql
                self.columns = columns
            } else {
                sql = statement.text
                arguments = statement.arguments
            }
            table = StatementBatch.Shape.of(statement.sql).table
        }

        func bind(into binds: inout PostgresBindings) {
            for column in columns { binds.append(PostgresArray(column)) }
            for argument in arguments { Self.bind(argument, into: &binds) }
        }

        static func bind(_ argument: SQLValue, into binds: inout PostgresBindings) {
            switch argument {
            case .null: binds.appendNull()
            case .integer(let integer): binds.append(integer)
            case .real(let real): binds.append(real)
            case .text(let text): binds.append(text)
            case .blob(let bytes): binds.append(ByteBuffer(bytes: bytes))
            }
        }
    }

    /// Writes sent ahead as one statement: the first ones as data-modifying `WITH` clauses, the
    /// last as the statement itself (`WITH w1 AS (INSERT …), w2 AS (UPDATE …) INSERT …`). Each
    /// runs once, to completion, on the statement's snapshot. That keeps what they would do one
    /// after the other because ``handOver()`` only combines writes to different tables and none
    /// of the log's writes reads another table (no triggers on insert, no foreign keys, no
    /// subqueries on other tables: ``PostgresSchema``). A `POST …/messages` writes four tables:
    /// one round trip instead of four, under the head lock every writer waits for.
    static func combined(_ parts: [Part]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: parts.reduce(0) { $0 + $1.parameters })
        var sql = ""
        for (index, part) in parts.enumerated() {
            if index < parts.count - 1 {
                sql += (index == 0 ? "WITH " : ", ") + "w\(index + 1) AS (\(part.sql))"
            } else {
                sql += (parts.count > 1 ? " " : "") + part.sql
            }
            part.bind(into: &binds)
        }
        return PostgresQuery(unsafeSQL: numbered(sql), binds: binds)
    }

    /// Sends what was kept and waits for every statement sent ahead. The first failure among
    /// them fails the whole transaction (a storage failure, whatever the statement was): it may
    /// belong to any of the appends merged into one statement, so no single append can be
    /// refused for it.
    func settle() throws {
        handOver()
        guard !pending.isEmpty else { return }
        let waiting = pending
        pending = []
        var failure: (any Error)?
        for future in waiting {
            do { _ = try answer(future) } catch { failure = failure ?? error }
        }
        if let failure {
            let translated = PostgresErrors.translate(failure, location: location)
            throw EventStoreError(
                code: .storageFailure, message: "\(translated.message) (in a statement sent ahead)", cause: failure)
        }
    }

    /// Waits for a statement's answer. postgres-nio can leave a statement sent while the
    /// connection was closing unanswered for good (vapor/postgres-nio#487, reverted in #501:
    /// seen here as a test hanging after a server restart). So the wait looks at the connection
    /// twice a second, and a statement still unanswered two seconds after its connection closed
    /// fails as the connection's loss (``PostgresErrors/isUnavailable(_:)``). On an open
    /// connection it waits as long as the server takes (a lock held by another node).
    private func answer(_ future: EventLoopFuture<PostgresQueryResult>) throws -> PostgresQueryResult {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<PostgresQueryResult, any Error>?>(nil)
        future.whenComplete { answer in
            result.withLock { $0 = answer }
            done.signal()
        }
        var closedAt: ContinuousClock.Instant?
        while done.wait(timeout: .now() + .milliseconds(500)) == .timedOut {
            guard connection.isClosed else { continue }
            let since = closedAt ?? .now
            closedAt = since
            if ContinuousClock.now - since > .seconds(2) { throw PostgresErrors.Unanswered() }
        }
        return try result.withLock { $0! }.get()
    }

    /// Forgets what was kept and waits for what was sent, ignoring failures: before a rollback.
    func discardPending() {
        _ = batch.take()
        _ = try? settle()
    }

    private func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        try settle()
        do {
            return try answer(connection.query(Self.query(sql, arguments), logger: logger))
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
    }

    private static func query(_ sql: String, _ arguments: [SQLValue]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments { Part.bind(argument, into: &binds) }
        return PostgresQuery(unsafeSQL: numbered(sql), binds: binds)
    }

    /// `sql` with its `?` placeholders numbered `$1`, `$2`, … as PostgreSQL wants them; a `?`
    /// inside a quoted literal or identifier is left alone.
    static func numbered(_ sql: String) -> String {
        replacingPlaceholders(in: sql) { "$\($0)" }
    }

    /// `sql` with its n-th `?` placeholder (from 1) replaced by `replacement(n)`; a `?` inside a
    /// quoted literal or identifier is left alone. Works on the UTF-8 bytes (the quotes and `?`
    /// are ASCII, which no byte of a longer UTF-8 sequence equals): every statement an append
    /// sends passes here, and walking it by `Character` was 7% of a PostgreSQL append's writer.
    static func replacingPlaceholders(in sql: some StringProtocol, _ replacement: (Int) -> String) -> String {
        var result: [UInt8] = []
        result.reserveCapacity(sql.utf8.count + 16)
        var number = 0
        var quote: UInt8?
        for byte in sql.utf8 {
            if let open = quote {
                if byte == open { quote = nil }
                result.append(byte)
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
                result.append(byte)
            } else if byte == UInt8(ascii: "?") {
                number += 1
                result += replacement(number).utf8
            } else {
                result.append(byte)
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2, .oid: return .integer(try cell.decode(Int64.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float8, .float4: return .real(try cell.decode(Double.self))
        case .bytea:
            var buffer = try cell.decode(ByteBuffer.self)
            return .blob(buffer.readBytes(length: buffer.readableBytes) ?? [])
        default: return .text(try cell.decode(String.self))
        }
    }
}

/// PostgreSQL's errors as the log's: one line that names the database and what went wrong.
enum PostgresErrors {
    /// Whether `error` says the server is away for now — unreachable, closed the connection,
    /// shutting down or starting up (SQLSTATE classes 08 and 57) — rather than refusing what
    /// was asked: what a caller may retry once the server is back.
    static func isUnavailable(_ error: any Error) -> Bool {
        let cause = (error as? EventStoreError)?.cause ?? error
        if cause is Unanswered { return true }
        guard let psql = cause as? PSQLError else { return false }
        if let state = psql.serverInfo?[.sqlState] { return state.hasPrefix("08") || state.hasPrefix("57") }
        switch psql.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection: return true
        default: return false
        }
    }

    /// A statement its connection closed without answering.
    struct Unanswered: Error, CustomStringConvertible {
        var description: String { "the connection closed with a statement unanswered" }
    }

    static func translate(_ error: any Error, location: PostgresLocation) -> EventStoreError {
        if let error = error as? EventStoreError { return error }
        if error is Unanswered {
            return EventStoreError(
                code: .storageFailure, message: "PostgreSQL at \(location): cannot reach the server: \(error)",
                cause: error)
        }
        guard let psql = error as? PSQLError else {
            return EventStoreError(
                code: .storageFailure, message: "PostgreSQL at \(location) failed: \(error)", cause: error)
        }
        if let info = psql.serverInfo, let message = info[.message] {
            let state = info[.sqlState] ?? "?"
            let detail = info[.detail].map { " (\($0))" } ?? ""
            return EventStoreError(
                code: state.hasPrefix("23") || state == "P0001" ? .rejected : .storageFailure,
                message: "PostgreSQL at \(location): \(message)\(detail) [SQLSTATE \(state)]", cause: error)
        }
        let reason: String
        switch psql.code {
        case .connectionError where psql.underlying is NIOSSLError:
            let failure = "\(psql.underlying!)"
            reason =
                failure.contains("CERTIFICATE_VERIFY_FAILED")
                ? "the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED): sslrootcert must name the "
                    + "authority that signed it, and verify-full also checks the host name against it"
                : "the TLS handshake failed: \(failure)"
        case .connectionError, .serverClosedConnection, .clientClosedConnection:
            reason = "cannot reach the server" + (psql.underlying.map { ": \($0)" } ?? "")
        case .authMechanismRequiresPassword:
            reason = "the server asks for a password and none was given (put it in the URL or PGPASSWORD)"
        case .sslUnsupported:
            reason = "the server does not support TLS"
        default:
            reason = "\(psql.code)" + (psql.underlying.map { ": \($0)" } ?? "")
        }
        return EventStoreError(code: .storageFailure, message: "PostgreSQL at \(location): \(reason)", cause: error)
    }
}

/// A column of values as one PostgreSQL array parameter, in the binary array format
/// (`array_send`: dimensions, a NULL flag, the element type, then each element's length — -1 for
/// NULL — and bytes).
struct PostgresArray: PostgresDynamicTypeEncodable {
    let column: StatementBatch.ArrayColumn

    init(_ column: StatementBatch.ArrayColumn) {
        self.column = column
    }

    var psqlType: PostgresDataType {
        switch column.kind {
        case .integer: .int8Array
        case .real: .float8Array
        case .text: .textArray
        case .blob: .byteaArray
        }
    }

    var psqlFormat: PostgresFormat { .binary }

    private var elementType: PostgresDataType {
        switch column.kind {
        case .integer: .int8
        case .real: .float8
        case .text: .text
        case .blob: .bytea
        }
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(
        into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>
    ) {
        buffer.writeInteger(Int32(1))  // dimensions
        buffer.writeInteger(Int32(column.values.contains(.null) ? 1 : 0))
        buffer.writeInteger(Int32(bitPattern: elementType.rawValue))
        buffer.writeInteger(Int32(column.values.count))
        buffer.writeInteger(Int32(1))  // lower bound
        for value in column.values {
            switch value {
            case .null:
                buffer.writeInteger(Int32(-1))
            case .integer(let integer):
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(integer)
            case .real(let real):
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(real.bitPattern)
            case .text(let text):
                buffer.writeInteger(Int32(text.utf8.count))
                buffer.writeString(text)
            case .blob(let bytes):
                buffer.writeInteger(Int32(bytes.count))
                buffer.writeBytes(bytes)
            }
        }
    }
}
