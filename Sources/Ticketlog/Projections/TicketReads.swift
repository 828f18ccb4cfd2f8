/// The projections' read side over a session of either backend: ticket summaries, the ticket
/// list, members now and when a message was posted, and messages with edits and deletes
/// applied. A message's text lives in the event it points at (`text_position`); reading that
/// event is the caller's (`event`): a file's store opens sealed content with its keyring, a
/// reader without one leaves it sealed.
package struct TicketReads {
    let session: any SQLSession
    /// The event at a position (a message's post or its last edit).
    let event: (Int64) throws -> RecordedEvent
    /// The events at several positions, by position (a page of messages' texts at once).
    let events: ([Int64]) throws -> [Int64: RecordedEvent]

    init(
        _ session: any SQLSession, event: @escaping (Int64) throws -> RecordedEvent,
        events: @escaping ([Int64]) throws -> [Int64: RecordedEvent]
    ) {
        self.session = session
        self.event = event
        self.events = events
    }

    /// Reads over `session` with events decoded by `reader` (sealed fields left sealed).
    package init(_ session: any SQLSession, reader: LogReader) {
        self.init(
            session,
            event: { position in
                guard let event = try reader.events(session, from: position, limit: 1).first,
                    event.position == position
                else { throw TicketReads.missing(position) }
                return event
            },
            events: { positions in
                // One statement for a page's texts: on PostgreSQL a round trip per message was
                // fifty for a page.
                guard !positions.isEmpty else { return [:] }
                let list = Array(repeating: "?", count: positions.count).joined(separator: ", ")
                var found: [Int64: RecordedEvent] = [:]
                for event in try reader.events(
                    session, where: "e.position IN (\(list))", positions.map { .integer($0) })
                {
                    found[event.position] = event
                }
                if let missing = positions.first(where: { found[$0] == nil }) { throw TicketReads.missing(missing) }
                return found
            })
    }

    static func missing(_ position: Int64) -> EventStoreError {
        .corrupt("a projection points at position \(position), which the log does not hold", position: position)
    }

    // MARK: Tickets

    private static let summarySQL = """
        SELECT t.name, t.title, t.brand, t.creator, t.agent, t.status, t.opened_at, t.last_activity_at,
               t.last_position, t.events, t.deliverables,
               (SELECT count(*) FROM members m WHERE m.stream = t.stream) AS members,
               (SELECT count(*) FROM messages g WHERE g.stream = t.stream AND g.deleted_at IS NULL) AS messages
        FROM ticket_summaries t
        """

    /// One ticket's summary; `nil` when the log has no such ticket.
    package func summary(_ stream: StreamID) throws -> TicketSummary? {
        // By the stream's key (`streams` is indexed by name; `ticket_summaries.name` is not).
        try session.row(
            Self.summarySQL + " WHERE t.stream = (SELECT key FROM streams WHERE name = ?)", [.text(stream.rawValue)]
        ).map(Self.summary)
    }

    /// The tickets matching `filter`, most recently active first.
    package func tickets(_ filter: TicketFilter, limit: Int) throws -> [TicketSummary] {
        let (conditions, arguments) = Self.conditions(filter)
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try session.rows(
            Self.summarySQL + whereClause + " ORDER BY t.last_position DESC LIMIT ?",
            arguments + [.integer(Int64(max(0, limit)))]
        ).map(Self.summary)
    }

    /// `filter` as SQL conditions on `ticket_summaries t`, with their arguments: the ticket list
    /// and the search (the tickets a caller may read) narrow alike.
    static func conditions(_ filter: TicketFilter) -> (conditions: [String], arguments: [SQLValue]) {
        var conditions: [String] = []
        var arguments: [SQLValue] = []
        for (column, value) in [
            ("t.brand", filter.brand), ("t.creator", filter.creator), ("t.agent", filter.agent),
            ("t.status", filter.status),
        ] {
            if let value {
                conditions.append("\(column) = ?")
                arguments.append(.text(value))
            }
        }
        if let member = filter.member {
            conditions.append("t.stream IN (SELECT stream FROM members WHERE \"user\" = ?)")
            arguments.append(.text(member))
        }
        return (conditions, arguments)
    }

    /// How many tickets (streams) the log holds.
    package func ticketCount() throws -> Int {
        Int(try session.value("SELECT count(*) FROM streams").integer ?? 0)
    }

    private static func summary(_ row: SQLRow) -> TicketSummary {
        TicketSummary(
            stream: StreamID(unchecked: row[0].text ?? ""),
            title: row[1].text, brand: row[2].text, creator: row[3].text, agent: row[4].text,
            status: row[5].text ?? "", openedAt: row[6].integer.map(Timestamp.init(microsecondsSinceEpoch:)),
            lastActivityAt: Timestamp(microsecondsSinceEpoch: row[7].integer ?? 0),
            lastPosition: row[8].integer ?? 0, events: Int(row[9].integer ?? 0),
            deliverables: Int(row[10].integer ?? 0),
            members: Int(row[11].integer ?? 0), messages: Int(row[12].integer ?? 0))
    }

    // MARK: State

    /// `stream`'s state now with only its last `count` messages, from the projections' rows in
    /// this session's snapshot: the summary, the members, the last messages, the message count
    /// and the deliverables' events — what ``TicketState`` folds, without folding the ticket's
    /// every event. `nil` when the projections do not hold every event of the ticket (one of them
    /// is rebuilt or caught up alone, or behind the log) or the log has no such ticket: the fold
    /// answers then.
    package func currentState(_ stream: StreamID, lastMessages count: Int) throws -> TicketState? {
        // The three projections applied the same prefix of the log, and it holds every event of
        // the ticket: the summary counted as many events as the stream's version.
        let checkpoints = try ProjectionCheckpoints.fetchAll(session)
        let projections: [any Projection] = [
            TicketSummaryProjection(), MembershipProjection(), MessageHistoryProjection(),
        ]
        let applied = projections.map { projection in
            checkpoints[projection.name].flatMap { $0.version == projection.version ? $0.position : nil }
        }
        guard let position = applied[0], applied.allSatisfy({ $0 == position }) else { return nil }
        guard
            let row = try session.row(
                """
                SELECT t.title, t.brand, t.creator, t.agent, t.status, t.opened_at, t.last_activity_at,
                       t.last_position, t.events, s.version,
                       (SELECT count(*) FROM messages g WHERE g.stream = s.key)
                FROM streams s JOIN ticket_summaries t ON t.stream = s.key WHERE s.name = ?
                """, [.text(stream.rawValue)]),
            let events = row[8].integer, let version = row[9].integer, events == version,
            let lastPosition = row[7].integer, lastPosition <= position, let lastActivity = row[6].integer,
            let status = row[4].text, let messageCount = row[10].integer
        else { return nil }
        var header = TicketHeader()
        header.title = row[0].text
        header.brand = row[1].text
        header.creator = row[2].text
        header.agent = row[3].text
        header.status = status
        header.openedAt = row[5].integer.map(Timestamp.init(microsecondsSinceEpoch:))
        header.lastActivityAt = Timestamp(microsecondsSinceEpoch: lastActivity)
        let kept =
            count > 0
            ? try messages(of: stream, from: nil, direction: .backwards, limit: count, includeDeleted: true).reversed()
            : []
        return TicketState(
            stream: stream, header: header, members: try members(of: stream), messages: kept,
            messagesOmitted: Int(messageCount) - kept.count, deliverables: try deliverables(of: stream),
            position: lastPosition, version: version)
    }

    /// `stream`'s deliverables in pushing order: its `deliverable.pushed` events, found by the
    /// stream's index and their type, read in one statement.
    private func deliverables(of stream: StreamID) throws -> [TicketState.Deliverable] {
        let positions = try session.rows(
            """
            SELECT e.position FROM events e
            WHERE e.stream = (SELECT key FROM streams WHERE name = ?)
              AND e.type = (SELECT key FROM event_types WHERE name = ?)
            ORDER BY e.version
            """, [.text(stream.rawValue), .text(EventType.deliverablePushed.rawValue)]
        ).compactMap { $0[0].integer }
        let found = try events(positions)
        // As the fold: an event of the type whose payload this build cannot read is skipped.
        return positions.compactMap { position in
            guard let event = found[position], case .deliverablePushed(let pushed) = event.payload else { return nil }
            return TicketState.Deliverable(
                deliverable: pushed, position: position, pushedBy: event.actor, pushedAt: event.occurredAt)
        }
    }

    // MARK: Members

    /// The members of `stream`'s channel now, in joining order.
    package func members(of stream: StreamID) throws -> [TicketState.Member] {
        try session.rows(
            """
            SELECT m."user", m.role, m.joined_at, m.joined_position FROM members m
            JOIN streams s ON s.key = m.stream WHERE s.name = ? ORDER BY m.joined_position
            """, [.text(stream.rawValue)]
        ).map(Self.member)
    }

    /// Whether `user` is a member of `stream`'s channel now.
    package func isMember(_ user: String, of stream: StreamID) throws -> Bool {
        try session.row(
            "SELECT 1 FROM members m JOIN streams s ON s.key = m.stream WHERE s.name = ? AND m.\"user\" = ?",
            [.text(stream.rawValue), .text(user)]) != nil
    }

    /// Who was in `stream`'s channel when the message `messageID` was posted; `nil` when the
    /// ticket has no such message.
    package func membersWhenPosted(_ messageID: String, in stream: StreamID) throws -> [TicketState.Member]? {
        guard
            let message = try session.row(
                "SELECT m.stream, m.position FROM messages m JOIN streams s ON s.key = m.stream WHERE s.name = ? AND m.message_id = ?",
                [.text(stream.rawValue), .text(messageID)])
        else { return nil }
        return try session.rows(
            """
            SELECT "user", role, joined_at, joined_position FROM membership_intervals
            WHERE stream = ? AND joined_position < ? AND (left_position IS NULL OR left_position > ?)
            ORDER BY joined_position
            """, [message[0], message[1], message[1]]
        ).map(Self.member)
    }

    private static func member(_ row: SQLRow) -> TicketState.Member {
        TicketState.Member(
            user: row[0].text ?? "", role: row[1].text.flatMap(Actor.Role.init(rawValue:)) ?? .system,
            joinedAt: Timestamp(microsecondsSinceEpoch: row[2].integer ?? 0), joinedPosition: row[3].integer ?? 0)
    }

    // MARK: Messages

    private static let messageColumns = """
        SELECT m.message_id, m.position, m.author, m.author_role, m.text_position, m.posted_at,
               m.edited_at, m.edits, m.deleted_at
        FROM messages m JOIN streams s ON s.key = m.stream
        """

    /// A page of `stream`'s messages with edits and deletes applied, from `cursor` on.
    package func messages(
        of stream: StreamID, from cursor: MessageCursor?, direction: ReadDirection, limit: Int, includeDeleted: Bool
    ) throws -> [TicketState.Message] {
        var conditions = ["s.name = ?"]
        var arguments: [SQLValue] = [.text(stream.rawValue)]
        let forwards = direction == .forwards
        switch cursor {
        case .position(let position)?:
            conditions.append(forwards ? "m.position > ?" : "m.position < ?")
            arguments.append(.integer(position))
        case .time(let time)?:
            conditions.append(forwards ? "m.posted_at >= ?" : "m.posted_at <= ?")
            arguments.append(.integer(time.microsecondsSinceEpoch))
        case nil:
            break
        }
        if !includeDeleted { conditions.append("m.deleted_at IS NULL") }
        let order: String
        if case .time = cursor {
            order = forwards ? "m.posted_at, m.position" : "m.posted_at DESC, m.position DESC"
        } else {
            order = forwards ? "m.position" : "m.position DESC"
        }
        let rows = try session.rows(
            Self.messageColumns + " WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(order) LIMIT ?",
            arguments + [.integer(Int64(max(0, limit)))])
        // Every event the page's texts need, read at once: each text's event, and the post of
        // an edited one (its attachments).
        var positions: [Int64] = []
        for row in rows {
            guard let textPosition = row[4].integer else { continue }
            positions.append(textPosition)
            if let post = row[1].integer, post != textPosition { positions.append(post) }
        }
        let events = try self.events(positions)
        return try rows.map { row in try message(row) { position in try events[position] ?? event(position) } }
    }

    /// One message of `stream`; `nil` when there is none.
    package func message(_ messageID: String, in stream: StreamID) throws -> TicketState.Message? {
        try session.row(
            Self.messageColumns + " WHERE s.name = ? AND m.message_id = ?",
            [.text(stream.rawValue), .text(messageID)]
        ).map { row in try message(row, event) }
    }

    /// A `messages` row with its text and attachments read from the events it points at
    /// (`event`).
    private func message(_ row: SQLRow, _ event: (Int64) throws -> RecordedEvent) throws -> TicketState.Message {
        let messageID = row[0].text ?? ""
        let post = row[1].integer ?? 0
        var text: String?
        var attachments: [MessagePosted.Attachment] = []
        if let textPosition = row[4].integer {
            switch try event(textPosition).payload {
            case .messagePosted(let posted):
                text = posted.text
                attachments = posted.attachments
            case .messageEdited(let edited):
                text = edited.text
                if case .messagePosted(let posted) = try event(post).payload { attachments = posted.attachments }
            default:
                throw EventStoreError.corrupt(
                    "message \(messageID.debugDescription) points at position \(textPosition), which holds no message text",
                    position: textPosition)
            }
        }
        return TicketState.Message(
            messageID: messageID, position: post,
            author: Actor(id: row[2].text ?? "", role: row[3].text.flatMap(Actor.Role.init(rawValue:)) ?? .system),
            text: text, attachments: attachments, postedAt: Timestamp(microsecondsSinceEpoch: row[5].integer ?? 0),
            editedAt: row[6].integer.map(Timestamp.init(microsecondsSinceEpoch:)), edits: Int(row[7].integer ?? 0),
            deletedAt: row[8].integer.map(Timestamp.init(microsecondsSinceEpoch:)))
    }
}
