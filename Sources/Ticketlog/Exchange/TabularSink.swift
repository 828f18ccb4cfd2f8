import Foundation

/// A value in an exported table.
enum ExportValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// Where exported tables go: CSV files, NDJSON files or an SQLite database. Rows are written
/// as they come; nothing is held back but a write buffer.
protocol TabularSink {
    /// Starts `table` with these columns (name and SQL type).
    mutating func begin(_ table: String, columns: [(name: String, type: String)]) throws
    mutating func write(_ row: [ExportValue]) throws
    /// Writes one row of the `events` table; `line` is the event as `ticketlog read` prints it.
    mutating func write(event: RecordedEvent, line: [UInt8]) throws
    mutating func finish() throws
}

extension TabularSink {
    /// The event in the table's columns.
    mutating func write(event: RecordedEvent, line: [UInt8]) throws {
        try write(try ExportTables.eventRow(event))
    }
}

/// A buffered file writer.
struct FileWriter {
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw EventStoreError(code: .storageFailure, message: "cannot create \(path)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        buffer.reserveCapacity(1 << 20)
    }

    mutating func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 20 { try flush() }
    }

    mutating func write(bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { try flush() }
    }

    mutating func flush() throws {
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func close() throws {
        try flush()
        try handle.close()
    }
}

/// RFC 4180 CSV: a header row, comma separators, CRLF line ends, fields quoted when they hold
/// a comma, a quote, CR or LF (quotes doubled). One file per table: `DIRECTORY/TABLE.csv`.
struct CSVSink: TabularSink {
    let directory: String
    private var file: FileWriter?

    init(directory: String) { self.directory = directory }

    mutating func begin(_ table: String, columns: [(name: String, type: String)]) throws {
        try file?.close()
        file = try FileWriter(path: (directory as NSString).appendingPathComponent("\(table).csv"))
        try file!.write(columns.map { Self.field($0.name) }.joined(separator: ",") + "\r\n")
    }

    mutating func write(_ row: [ExportValue]) throws {
        let fields = row.map { value -> String in
            switch value {
            case .null: ""
            case .integer(let number): String(number)
            case .real(let number): String(number)
            case .text(let text): Self.field(text)
            }
        }
        try file!.write(fields.joined(separator: ",") + "\r\n")
    }

    mutating func finish() throws {
        try file?.close()
        file = nil
    }

    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else {
            return text
        }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// NDJSON: one JSON object per line, one file per table: `DIRECTORY/TABLE.ndjson`. Events are
/// written whole, as `ticketlog read` prints them, so the file imports back with `ticketlog
/// import`; other tables as objects keyed by column name.
struct NDJSONSink: TabularSink {
    let directory: String
    private var file: FileWriter?
    private var columns: [String] = []

    init(directory: String) { self.directory = directory }

    mutating func begin(_ table: String, columns: [(name: String, type: String)]) throws {
        try file?.close()
        file = try FileWriter(path: (directory as NSString).appendingPathComponent("\(table).ndjson"))
        self.columns = columns.map(\.name)
    }

    mutating func write(_ row: [ExportValue]) throws {
        var object: [String: JSONValue] = [:]
        for (name, value) in zip(columns, row) {
            switch value {
            case .null: object[name] = .null
            case .integer(let number): object[name] = .integer(number)
            case .real(let number): object[name] = .number(number)
            case .text(let text): object[name] = .string(text)
            }
        }
        try file!.write(bytes: try CanonicalJSON.encode(JSONValue.object(object)) + [UInt8(ascii: "\n")])
    }

    /// The line itself: the same bytes as `ticketlog read`.
    mutating func write(event: RecordedEvent, line: [UInt8]) throws {
        try file!.write(bytes: line)
        try file!.write(bytes: [UInt8(ascii: "\n")])
    }

    mutating func finish() throws {
        try file?.close()
        file = nil
    }
}
