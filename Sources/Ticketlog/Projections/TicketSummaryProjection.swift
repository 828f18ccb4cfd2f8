/// One row per ticket: title, brand, creator, assigned agent, status, event and deliverable
/// counts, and last activity.
///
/// Self-contained on purpose: it reads no other projection's tables, so it can be rebuilt alone
/// and apply order between projections does not matter. Member and message counts come from
/// the membership and message projections at query time.
struct TicketSummaryProjection: TransactionalProjection {
    let name = "ticket_summary"
    let version = 1
    let tables = ["ticket_summaries"]

    func schema(_ dialect: SQLDialect) -> [String] {
        [
            """
            CREATE TABLE ticket_summaries (
                stream INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                title TEXT,
                brand TEXT,
                creator TEXT,
                agent TEXT,
                status TEXT NOT NULL,
                opened_at INTEGER,
                last_activity_at INTEGER NOT NULL,
                last_position INTEGER NOT NULL,
                events INTEGER NOT NULL,
                deliverables INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX ticket_summaries_by_brand ON ticket_summaries(brand)",
            "CREATE INDEX ticket_summaries_by_creator ON ticket_summaries(creator)",
            "CREATE INDEX ticket_summaries_by_agent ON ticket_summaries(agent)",
        ].map(dialect.schema)
    }

    func transaction() -> Transaction {
        Transaction()
    }

    /// The summaries a transaction touches, read once, changed in memory by each event, and
    /// written once at its end: one row write per ticket per transaction instead of one or two
    /// per event.
    struct Transaction: ProjectionTransaction {
        struct Row: Equatable {
            var name: String
            var title: String?
            var brand: String?
            var creator: String?
            var agent: String?
            var status: String
            var openedAt: Int64?
            var lastActivityAt: Int64
            var lastPosition: Int64
            var events: Int64
            var deliverables: Int64

            /// Whether this row differs from `stored` only in what ``narrowUpdate`` writes.
            func keepsIndexedColumns(of stored: Row) -> Bool {
                name == stored.name && title == stored.title && brand == stored.brand && creator == stored.creator
                    && agent == stored.agent && openedAt == stored.openedAt
            }
        }

        /// By stream key: the row as the transaction has it (`nil`: none yet) and whether it changed.
        private var rows: [Int64: (row: Row?, changed: Bool)] = [:]
        /// By stream key: the row as the table holds it, for those read or written in this
        /// transaction. A row whose indexed columns are as stored is written on SQLite by an
        /// update of the other columns only (``narrowUpdate``): an upsert's update deletes and
        /// inserts the row's entry in every index of the table (brand, creator, agent), changed
        /// or not.
        private var stored: [Int64: Row] = [:]
        /// What the current append changed: each key's entry before it (`nil`: none).
        private var undo = AppendUndo<Int64, (row: Row?, changed: Bool)?>()

        mutating func beginAppend() {
            undo.forget()
        }

        mutating func rollBackAppend() {
            for change in undo.rollBack() { rows[change.key] = change.value }
        }

        mutating func prefetch(streams: [Int64], _ session: any SQLSession) throws {
            let unknown = streams.filter { rows[$0] == nil }
            for key in unknown { rows[key] = (nil, false) }
            for row in try session.rows(Self.select + " WHERE stream IN", in: unknown.map(SQLValue.integer)) {
                guard let key = row[0].integer else { continue }
                let read = Self.row(SQLRow(Array(row.values.dropFirst())))
                rows[key] = (read, false)
                stored[key] = read
            }
        }

        mutating func created(stream: Int64) {
            if rows[stream] == nil { rows[stream] = (nil, false) }
        }

        mutating func apply(_ projected: ProjectedEvent, _ session: any SQLSession) throws {
            let event = projected.event
            // The erasure record is no ticket.
            if case .erasurePerformed = event.payload { return }
            let at = event.occurredAt.microsecondsSinceEpoch
            let entry = rows[projected.streamKey]
            undo.remember(projected.streamKey, entry)
            // An entry without a row: read ahead, and there is none.
            let current: Row?
            if let entry {
                current = entry.row
            } else {
                current = try Self.fetch(projected.streamKey, session)
                if let current { stored[projected.streamKey] = current }
            }
            // Every event counts as activity; a ticket row exists from its first event on, even if
            // that is not `ticket.opened` (e.g. history imported from Stream).
            var row =
                current
                ?? Row(
                    name: event.stream.rawValue, status: "open", lastActivityAt: at, lastPosition: event.position,
                    events: 0, deliverables: 0)
            row.lastActivityAt = max(row.lastActivityAt, at)
            row.lastPosition = event.position
            row.events += 1
            switch event.payload {
            case .ticketOpened(let opened):
                row.title = opened.title
                row.brand = opened.brand
                row.creator = opened.creator
                row.openedAt = at
            case .agentAssigned(let assigned):
                row.agent = assigned.agent
            case .agentUnassigned(let unassigned):
                if row.agent == unassigned.agent { row.agent = nil }
            case .statusChanged(let change):
                row.status = change.to
            case .deliverablePushed:
                row.deliverables += 1
            case .memberJoined, .memberLeft, .messagePosted, .messageEdited, .messageDeleted, .erasurePerformed,
                .unknown:
                break
            }
            rows[projected.streamKey] = (row, true)
        }

        mutating func finish(_ session: any SQLSession) throws {
            let changed = rows.compactMap { key, entry in entry.changed ? entry.row.map { (key, $0) } : nil }
            // PostgreSQL compares the indexed values itself (a heap-only update when they are the
            // same) and gets every row in one merged statement: all of them go to the upsert there.
            var upserted: [(Int64, Row)] = []
            for (key, row) in changed {
                if session.dialect == .sqlite, let before = stored[key], row.keepsIndexedColumns(of: before) {
                    try session.send(
                        Self.narrowUpdate,
                        [
                            .text(row.status), .integer(row.lastActivityAt), .integer(row.lastPosition),
                            .integer(row.events), .integer(row.deliverables), .integer(key),
                        ])
                } else {
                    upserted.append((key, row))
                }
            }
            // 400 rows (4,800 parameters) per statement.
            for start in stride(from: 0, to: upserted.count, by: 400) {
                let chunk = upserted[start..<min(start + 400, upserted.count)]
                try session.send(
                    """
                    INSERT INTO ticket_summaries(stream, name, title, brand, creator, agent, status, opened_at,
                        last_activity_at, last_position, events, deliverables)
                    VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", "))
                    ON CONFLICT(stream) DO UPDATE SET
                        title = excluded.title, brand = excluded.brand, creator = excluded.creator,
                        agent = excluded.agent, status = excluded.status, opened_at = excluded.opened_at,
                        last_activity_at = excluded.last_activity_at, last_position = excluded.last_position,
                        events = excluded.events, deliverables = excluded.deliverables
                    """,
                    chunk.flatMap { key, row -> [SQLValue] in
                        [
                            .integer(key), .text(row.name), .optional(row.title), .optional(row.brand),
                            .optional(row.creator), .optional(row.agent), .text(row.status), .optional(row.openedAt),
                            .integer(row.lastActivityAt), .integer(row.lastPosition), .integer(row.events),
                            .integer(row.deliverables),
                        ]
                    })
            }
            for (key, row) in changed {
                rows[key] = (row, false)
                stored[key] = row
            }
        }

        /// The columns of a summary that no index holds, by its stream key.
        private static let narrowUpdate = """
            UPDATE ticket_summaries SET status = ?, last_activity_at = ?, last_position = ?, events = ?,
                deliverables = ?
            WHERE stream = ?
            """

        private static let select = """
            SELECT stream, name, title, brand, creator, agent, status, opened_at, last_activity_at, last_position,
                   events, deliverables
            FROM ticket_summaries
            """

        private static func fetch(_ key: Int64, _ session: any SQLSession) throws -> Row? {
            try session.row(select + " WHERE stream = ?", [.integer(key)]).map {
                row(SQLRow(Array($0.values.dropFirst())))
            }
        }

        /// A row as ``select`` reads it, without its stream key.
        private static func row(_ row: SQLRow) -> Row {
            Row(
                name: row[0].text ?? "", title: row[1].text, brand: row[2].text, creator: row[3].text,
                agent: row[4].text, status: row[5].text ?? "", openedAt: row[6].integer,
                lastActivityAt: row[7].integer ?? 0, lastPosition: row[8].integer ?? 0, events: row[9].integer ?? 0,
                deliverables: row[10].integer ?? 0)
        }
    }
}
