import Foundation

/// The file formats of an export.
public enum ExportFormat: String, CaseIterable, Sendable {
    /// A directory with `events.ndjson` (whole events, one per line, as `ticketlog read` prints
    /// them and `ticketlog import` reads them) and `ticket_facts.ndjson`.
    case ndjson
    /// A directory with `events.csv` and `ticket_facts.csv` (RFC 4180).
    case csv
    /// One SQLite file with the tables `events` and `ticket_facts`.
    case sqlite
}

/// What to export.
public struct ExportOptions: Sendable {
    public var format: ExportFormat
    /// Only this ticket.
    public var stream: StreamID?
    /// Only events that happened at or after this time.
    public var from: Timestamp?
    /// Only events that happened before this time.
    public var to: Timestamp?
    /// Replace existing export files instead of refusing.
    public var overwrite: Bool

    public init(
        format: ExportFormat, stream: StreamID? = nil, from: Timestamp? = nil, to: Timestamp? = nil,
        overwrite: Bool = false
    ) {
        self.format = format
        self.stream = stream
        self.from = from
        self.to = to
        self.overwrite = overwrite
    }
}

/// What an export wrote.
public struct ExportReport: Hashable, Sendable {
    public var events: Int
    public var tickets: Int
    public var files: [String]
}

/// How far an export has come.
public struct ExportProgress: Sendable {
    public var position: Int64
    public var headPosition: Int64
}

extension EventStore {
    /// Writes the events matching `options`, and one row of ``TicketFacts`` per ticket among
    /// them (facts describe the exported events), to `path`: a directory for NDJSON and CSV, a
    /// file for SQLite. Streams page by page: memory holds one page of events and one small
    /// record per ticket.
    ///
    /// - Throws: ``EventStoreError/Code/invalidEvent`` when the target exists and `overwrite` is
    ///   off; ``EventStoreError/Code/storageFailure`` when it cannot be written.
    public func export(
        to path: String, _ options: ExportOptions, progress: (@Sendable (ExportProgress) -> Void)? = nil
    ) async throws -> ExportReport {
        let files = try Self.prepareExportTarget(path, options)
        var sink: any TabularSink
        switch options.format {
        case .csv: sink = CSVSink(directory: path)
        case .ndjson: sink = NDJSONSink(directory: path)
        case .sqlite: sink = try SQLiteSink(path: path)
        }
        let head = try await headPosition()
        var facts: [StreamID: TicketFacts] = [:]
        var order: [StreamID] = []
        var exported = 0
        var query = AuditQuery(stream: options.stream, from: options.from, to: options.to, limit: 2_000)
        try sink.begin("events", columns: ExportTables.eventColumns)
        while true {
            let page = try await eventLines(query)
            guard let last = page.last?.event else { break }
            for (event, line) in page {
                try sink.write(event: event, line: line)
                if facts[event.stream] == nil {
                    facts[event.stream] = TicketFacts(stream: event.stream)
                    order.append(event.stream)
                }
                facts[event.stream]!.apply(event)
            }
            exported += page.count
            query.afterPosition = last.position
            progress?(ExportProgress(position: last.position, headPosition: head))
        }
        try sink.begin("ticket_facts", columns: ExportTables.factColumns)
        for stream in order { try sink.write(ExportTables.factRow(facts[stream]!)) }
        try sink.finish()
        return ExportReport(events: exported, tickets: order.count, files: files)
    }

    /// Checks (and creates) the target; returns the files the export will write.
    private static func prepareExportTarget(_ path: String, _ options: ExportOptions) throws -> [String] {
        let manager = FileManager.default
        let files: [String]
        switch options.format {
        case .sqlite:
            files = [path]
        case .csv, .ndjson:
            var isDirectory: ObjCBool = false
            if manager.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw EventStoreError.invalid(
                    "\(path) is a file; a \(options.format.rawValue) export writes a directory")
            }
            do {
                try manager.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw EventStoreError(
                    code: .storageFailure, message: "cannot create the directory \(path)", cause: error)
            }
            files = ["events", "ticket_facts"].map {
                (path as NSString).appendingPathComponent("\($0).\(options.format.rawValue)")
            }
        }
        for file in files where manager.fileExists(atPath: file) {
            guard options.overwrite else {
                throw EventStoreError.invalid("\(file) exists; choose another path or allow overwriting")
            }
            try? manager.removeItem(atPath: file)
        }
        return files
    }
}

/// The columns of exported tables. The same in every format, so an analysis reads any of them.
enum ExportTables {
    static let eventColumns: [(name: String, type: String)] = [
        ("position", "INTEGER PRIMARY KEY"), ("stream", "TEXT NOT NULL"), ("ticket_id", "TEXT"),
        ("version", "INTEGER NOT NULL"),
        ("event_id", "TEXT NOT NULL"), ("type", "TEXT NOT NULL"), ("actor", "TEXT NOT NULL"),
        ("actor_role", "TEXT NOT NULL"),
        ("occurred_at", "TEXT NOT NULL"), ("recorded_at", "TEXT NOT NULL"), ("origin", "TEXT NOT NULL"),
        ("message_id", "TEXT"), ("text", "TEXT"), ("payload", "TEXT NOT NULL"),
    ]

    static let factColumns: [(name: String, type: String)] = [
        ("stream", "TEXT PRIMARY KEY"), ("ticket_id", "TEXT"), ("title", "TEXT"), ("brand", "TEXT"),
        ("creator", "TEXT"),
        ("agent", "TEXT"), ("status", "TEXT NOT NULL"), ("opened_at", "TEXT"), ("first_agent_response_at", "TEXT"),
        ("first_agent_response_seconds", "REAL"), ("resolved_at", "TEXT"), ("resolution_seconds", "REAL"),
        ("last_activity_at", "TEXT"), ("events", "INTEGER NOT NULL"), ("messages", "INTEGER NOT NULL"),
        ("messages_by_agent", "INTEGER NOT NULL"), ("messages_by_brand", "INTEGER NOT NULL"),
        ("messages_by_creator", "INTEGER NOT NULL"), ("messages_by_admin", "INTEGER NOT NULL"),
        ("messages_by_system", "INTEGER NOT NULL"), ("messages_edited", "INTEGER NOT NULL"),
        ("messages_deleted", "INTEGER NOT NULL"), ("deliverables", "INTEGER NOT NULL"),
    ]

    static func eventRow(_ event: RecordedEvent) throws -> [ExportValue] {
        let (messageID, text): (String?, String?) =
            switch event.payload {
            case .messagePosted(let posted): (posted.messageID, posted.text)
            case .messageEdited(let edited): (edited.messageID, edited.text)
            case .messageDeleted(let deleted): (deleted.messageID, nil)
            default: (nil, nil)
            }
        let origin: String =
            event.origin.kind
        return [
            .integer(event.position), .text(event.stream.rawValue), optional(event.stream.ticketID),
            .integer(event.version),
            .text(event.id.uuidString.lowercased()), .text(event.type.rawValue), .text(event.actor.id),
            .text(event.actor.role.rawValue), .text(event.occurredAt.description), .text(event.recordedAt.description),
            .text(origin), optional(messageID), optional(text),
            .text(String(decoding: try CanonicalJSON.encode(PayloadJSON(payload: event.payload)), as: UTF8.self)),
        ]
    }

    static func factRow(_ facts: TicketFacts) -> [ExportValue] {
        [
            .text(facts.stream.rawValue), optional(facts.stream.ticketID), optional(facts.header.title),
            optional(facts.header.brand), optional(facts.header.creator), optional(facts.header.agent),
            .text(facts.header.status), optional(facts.header.openedAt?.description),
            optional(facts.firstAgentResponseAt?.description),
            facts.firstAgentResponseSeconds.map(ExportValue.real) ?? .null,
            optional(facts.resolvedAt?.description), facts.resolutionSeconds.map(ExportValue.real) ?? .null,
            optional(facts.header.lastActivityAt?.description), .integer(Int64(facts.events)),
            .integer(Int64(facts.messages)),
            .integer(Int64(facts.messagesByRole[.agent] ?? 0)), .integer(Int64(facts.messagesByRole[.brand] ?? 0)),
            .integer(Int64(facts.messagesByRole[.creator] ?? 0)), .integer(Int64(facts.messagesByRole[.admin] ?? 0)),
            .integer(Int64(facts.messagesByRole[.system] ?? 0)), .integer(Int64(facts.messagesEdited)),
            .integer(Int64(facts.messagesDeleted)), .integer(Int64(facts.deliverables)),
        ]
    }

    private static func optional(_ text: String?) -> ExportValue {
        text.map(ExportValue.text) ?? .null
    }

    /// Encodes a payload alone, as in the event body.
    private struct PayloadJSON: Encodable {
        var payload: EventPayload
        func encode(to encoder: any Encoder) throws { try payload.encode(to: encoder) }
    }
}
