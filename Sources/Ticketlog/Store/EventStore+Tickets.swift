import Foundation
import GRDB

extension EventStore {
    /// The summary of `stream`; `nil` when it has no events.
    public func ticketSummary(_ stream: StreamID) async throws -> TicketSummary? {
        try await read { db in try Self.ticketSummary(stream, db) }
    }

    static func ticketSummary(_ stream: StreamID, _ db: Database) throws -> TicketSummary? {
        try Row.fetchOne(db.cachedStatement(sql: Self.summarySQL + " WHERE t.name = ?"), arguments: [stream.rawValue])
            .map(Self.summary)
    }

    /// The tickets matching `filter` (every condition given must hold), most recently active first.
    public func tickets(_ filter: TicketFilter = .all, limit: Int = 1_000) async throws -> [TicketSummary] {
        let (conditions, filterArguments) = Self.conditions(filter)
        var arguments = filterArguments
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        arguments += [max(0, limit)]
        let sql = Self.summarySQL + whereClause + " ORDER BY t.last_position DESC LIMIT ?"
        return try await read { [arguments] db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.summary)
        }
    }

    /// `filter` as SQL conditions on `ticket_summaries t`, with their arguments: the ticket list
    /// and the search (the tickets a caller may read) narrow alike.
    static func conditions(_ filter: TicketFilter) -> (conditions: [String], arguments: StatementArguments) {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        for (column, value) in [
            ("t.brand", filter.brand), ("t.creator", filter.creator), ("t.agent", filter.agent),
            ("t.status", filter.status),
        ] {
            if let value {
                conditions.append("\(column) = ?")
                arguments += [value]
            }
        }
        if let member = filter.member {
            conditions.append("t.stream IN (SELECT stream FROM members WHERE user = ?)")
            arguments += [member]
        }
        return (conditions, arguments)
    }

    /// How many tickets (streams) the log holds.
    public func ticketCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM streams") ?? 0 }
    }

    /// The members of `stream`'s channel now, in joining order.
    public func members(of stream: StreamID) async throws -> [TicketState.Member] {
        try await read { db in try Self.members(of: stream, db) }
    }

    static func members(of stream: StreamID, _ db: Database) throws -> [TicketState.Member] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT m.user, m.role, m.joined_at, m.joined_position FROM members m
                    JOIN streams s ON s.key = m.stream WHERE s.name = ? ORDER BY m.joined_position
                    """),
            arguments: [stream.rawValue]
        ).map(Self.member)
    }

    /// Who was in `stream`'s channel when the message `messageID` was posted (and so could see it).
    /// `nil` when the ticket has no such message.
    public func membersWhenPosted(_ messageID: String, in stream: StreamID) async throws -> [TicketState.Member]? {
        try await read { db in
            guard
                let message = try Row.fetchOne(
                    db,
                    sql:
                        "SELECT m.stream, m.position FROM messages m JOIN streams s ON s.key = m.stream WHERE s.name = ? AND m.message_id = ?",
                    arguments: [stream.rawValue, messageID])
            else { return nil }
            let key: Int64 = message[0]
            let position: Int64 = message[1]
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT user, role, joined_at, joined_position FROM membership_intervals
                    WHERE stream = ? AND joined_position < ? AND (left_position IS NULL OR left_position > ?)
                    ORDER BY joined_position
                    """,
                arguments: [key, position, position]
            ).map(Self.member)
        }
    }

    /// A page of `stream`'s messages with edits and deletes applied, from `cursor` on.
    public func messages(
        of stream: StreamID, from cursor: MessageCursor? = nil, direction: ReadDirection = .forwards,
        limit: Int = 50, includeDeleted: Bool = true
    ) async throws -> [TicketState.Message] {
        var conditions = ["s.name = ?"]
        var arguments: StatementArguments = [stream.rawValue]
        let forwards = direction == .forwards
        switch cursor {
        case .position(let position)?:
            conditions.append(forwards ? "m.position > ?" : "m.position < ?")
            arguments += [position]
        case .time(let time)?:
            conditions.append(forwards ? "m.posted_at >= ?" : "m.posted_at <= ?")
            arguments += [time.microsecondsSinceEpoch]
        case nil:
            break
        }
        if !includeDeleted { conditions.append("m.deleted_at IS NULL") }
        arguments += [max(0, limit)]
        let order: String
        if case .time = cursor {
            order = forwards ? "m.posted_at, m.position" : "m.posted_at DESC, m.position DESC"
        } else {
            order = forwards ? "m.position" : "m.position DESC"
        }
        let sql = """
            SELECT m.message_id, m.position, m.author, m.author_role, m.text_position, m.posted_at,
                   m.edited_at, m.edits, m.deleted_at
            FROM messages m JOIN streams s ON s.key = m.stream
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(order) LIMIT ?
            """
        return try await read { [arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { try self.message($0, db) }
        }
    }

    /// A page of `stream`'s messages after `position`, forwards, read in `db`.
    func messages(of stream: StreamID, after position: Int64, limit: Int, includeDeleted: Bool, _ db: Database)
        throws -> [TicketState.Message]
    {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT m.message_id, m.position, m.author, m.author_role, m.text_position, m.posted_at,
                           m.edited_at, m.edits, m.deleted_at
                    FROM messages m JOIN streams s ON s.key = m.stream
                    WHERE s.name = ? AND m.position > ? AND (? OR m.deleted_at IS NULL) ORDER BY m.position LIMIT ?
                    """),
            arguments: [stream.rawValue, position, includeDeleted, max(0, limit)]
        ).map { try self.message($0, db) }
    }

    /// One message of `stream` with edits and deletes applied; `nil` when there is none.
    public func message(_ messageID: String, in stream: StreamID) async throws -> TicketState.Message? {
        try await read { db in try self.message(messageID, in: stream, db) }
    }

    func message(_ messageID: String, in stream: StreamID, _ db: Database) throws -> TicketState.Message? {
        try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT m.message_id, m.position, m.author, m.author_role, m.text_position, m.posted_at,
                           m.edited_at, m.edits, m.deleted_at
                    FROM messages m JOIN streams s ON s.key = m.stream WHERE s.name = ? AND m.message_id = ?
                    """),
            arguments: [stream.rawValue, messageID]
        ).map { try self.message($0, db) }
    }

    /// The full state of `stream` at a point in time, folded from its events. A ticket that did
    /// not exist yet has the empty state (version 0).
    public func ticketState(_ stream: StreamID, at point: PointInTime? = nil) async throws -> TicketState {
        var state = TicketState(stream: stream)
        var next: Int64 = 1
        while true {
            let page = try await readStream(stream, from: next, limit: 1_000)
            for event in page {
                switch point {
                case .position(let position)? where event.position > position: return state
                case .time(let time)? where event.recordedAt > time: continue
                default: state.apply(event)
                }
            }
            guard let last = page.last, page.count == 1_000 else { return state }
            next = last.version + 1
        }
    }

    private static let summarySQL = """
        SELECT t.name, t.title, t.brand, t.creator, t.agent, t.status, t.opened_at, t.last_activity_at,
               t.last_position, t.events, t.deliverables,
               (SELECT count(*) FROM members m WHERE m.stream = t.stream) AS members,
               (SELECT count(*) FROM messages g WHERE g.stream = t.stream AND g.deleted_at IS NULL) AS messages
        FROM ticket_summaries t
        """

    private static func summary(_ row: Row) -> TicketSummary {
        TicketSummary(
            stream: StreamID(unchecked: row[0]),
            title: row[1], brand: row[2], creator: row[3], agent: row[4], status: row[5],
            openedAt: (row[6] as Int64?).map(Timestamp.init(microsecondsSinceEpoch:)),
            lastActivityAt: Timestamp(microsecondsSinceEpoch: row[7]), lastPosition: row[8],
            events: row[9], deliverables: row[10], members: row[11], messages: row[12])
    }

    private static func member(_ row: Row) -> TicketState.Member {
        TicketState.Member(
            user: row[0], role: Actor.Role(rawValue: row[1]) ?? .system,
            joinedAt: Timestamp(microsecondsSinceEpoch: row[2]), joinedPosition: row[3])
    }

    /// A `messages` row with its text and attachments read from the events it points at.
    private func message(_ row: Row, _ db: Database) throws -> TicketState.Message {
        let post: Int64 = row[1]
        let textPosition: Int64? = row[4]
        var text: String?
        var attachments: [MessagePosted.Attachment] = []
        if let textPosition {
            switch try event(at: textPosition, db).payload {
            case .messagePosted(let posted):
                text = posted.text
                attachments = posted.attachments
            case .messageEdited(let edited):
                text = edited.text
                if case .messagePosted(let posted) = try event(at: post, db).payload {
                    attachments = posted.attachments
                }
            default:
                throw EventStoreError.corrupt(
                    "message \((row[0] as String).debugDescription) points at position \(textPosition), which holds no message text",
                    position: textPosition)
            }
        }
        return TicketState.Message(
            messageID: row[0], position: post,
            author: Actor(id: row[2], role: Actor.Role(rawValue: row[3]) ?? .system),
            text: text, attachments: attachments,
            postedAt: Timestamp(microsecondsSinceEpoch: row[5]),
            editedAt: (row[6] as Int64?).map(Timestamp.init(microsecondsSinceEpoch:)),
            edits: row[7],
            deletedAt: (row[8] as Int64?).map(Timestamp.init(microsecondsSinceEpoch:)))
    }

    /// The event at `position`, read in `db`.
    func event(at position: Int64, _ db: Database) throws -> RecordedEvent {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(Self.eventColumns) FROM events WHERE position = ?"),
                arguments: [position])
        else {
            throw EventStoreError.corrupt(
                "a projection points at position \(position), which the log does not hold", position: position)
        }
        return try decodeRecord(row, db: db)
    }
}
