import GRDB

/// One row per ticket: title, brand, creator, assigned agent, status, event and deliverable
/// counts, and last activity.
///
/// Self-contained on purpose: it reads no other projection's tables, so it can be rebuilt alone
/// and apply order between projections does not matter. Member and message counts come from
/// the membership and message projections at query time.
struct TicketSummaryProjection: Projection {
    let name = "ticket_summary"
    let version = 1
    let tables = ["ticket_summaries"]

    func createSchema(_ db: Database) throws {
        try db.execute(
            sql: """
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
                ) STRICT;
                CREATE INDEX ticket_summaries_by_brand ON ticket_summaries(brand);
                CREATE INDEX ticket_summaries_by_creator ON ticket_summaries(creator);
                CREATE INDEX ticket_summaries_by_agent ON ticket_summaries(agent);
                """)
    }

    func apply(_ projected: ProjectedEvent, _ db: Database) throws {
        let event = projected.event
        let at = event.occurredAt.microsecondsSinceEpoch
        // Every event counts as activity; a ticket row exists from its first event on, even if
        // that is not `ticket.opened` (e.g. history imported from Stream).
        try db.cachedStatement(
            sql: """
                INSERT INTO ticket_summaries(stream, name, status, last_activity_at, last_position, events, deliverables)
                VALUES (?, ?, 'open', ?, ?, 1, 0)
                ON CONFLICT(stream) DO UPDATE SET
                    last_activity_at = max(last_activity_at, excluded.last_activity_at),
                    last_position = excluded.last_position,
                    events = events + 1
                """
        ).execute(arguments: [projected.streamKey, event.stream.rawValue, at, event.position])

        let update: (String, StatementArguments)?
        switch event.payload {
        case .ticketOpened(let opened):
            update = (
                "title = ?, brand = ?, creator = ?, opened_at = ?",
                [opened.title, opened.brand, opened.creator, at]
            )
        case .agentAssigned(let assigned):
            update = ("agent = ?", [assigned.agent])
        case .agentUnassigned(let unassigned):
            update = ("agent = CASE WHEN agent = ? THEN NULL ELSE agent END", [unassigned.agent])
        case .statusChanged(let change):
            update = ("status = ?", [change.to])
        case .deliverablePushed:
            update = ("deliverables = deliverables + 1", [])
        case .memberJoined, .memberLeft, .messagePosted, .messageEdited, .messageDeleted, .unknown:
            update = nil
        }
        if let (assignments, arguments) = update {
            var all = arguments
            all += [projected.streamKey]
            try db.cachedStatement(sql: "UPDATE ticket_summaries SET \(assignments) WHERE stream = ?")
                .execute(arguments: all)
        }
    }
}
