import Foundation
import GRDB

extension EventStore {
    /// The read side of the projections in `session`, of either backend, messages' texts read
    /// (and opened) by this store.
    func ticketReads(_ session: any SQLSession) -> TicketReads {
        if let shared { return TicketReads(session, reader: shared.reader) }
        // The session itself, not a new one on its connection: a decision's opens its savepoint
        // at its first write (a sync mark).
        let sqlite = session as! SQLiteSession
        return TicketReads(
            sqlite, event: { position in try self.event(at: position, sqlite.db) },
            events: { positions in try self.events(at: positions, sqlite.db) })
    }

    /// The summary of `stream`; `nil` when it has no events.
    public func ticketSummary(_ stream: StreamID) async throws -> TicketSummary? {
        try await readSession { session in try self.ticketReads(session).summary(stream) }
    }

    /// Who `stream` belongs to (what access to it is decided by) and its content mark
    /// (``TicketContentMark``), in one statement; `nil` when the ticket has no events. Lighter
    /// than ``ticketSummary(_:)``, which also counts the ticket's members and messages. The mark
    /// is `nil` while the projections messages are read from are not at the same position (one
    /// of them rebuilt or caught up alone).
    public func ticketAccess(_ stream: StreamID) async throws -> (parties: TicketParties, mark: TicketContentMark?)? {
        // On a file, on the calling thread (``pointRead(_:)``): every API request to a ticket
        // starts here.
        do {
            if let access = try pointRead({ db in try Self.ticketAccess(stream, SQLiteSession(db)) }) {
                return access
            }
        } catch {
            throw Self.mapStorageError(error, "reading the log failed")
        }
        return try await readSession { session in try Self.ticketAccess(stream, session) }
    }

    /// The parties and the mark of a ticket in one statement: with the ticket's last position,
    /// the erasures stream's version and whether the summary and the message history are at one
    /// position (otherwise there is no mark). Every request to a ticket runs it, so it is written
    /// to need no temporary b-tree: `count(DISTINCT …)` and `IN (?, ?)` each made SQLite open
    /// one per run — a pager, a page cache malloc'ed and touched, then freed and trimmed from the
    /// heap: a tenth of a `GET …/messages`' server samples in page faults and `brk`.
    private static func ticketAccess(_ stream: StreamID, _ session: any SQLSession) throws -> (
        parties: TicketParties, mark: TicketContentMark?
    )? {
        guard
            let row = try session.row(
                """
                SELECT t.brand, t.creator, t.agent, t.last_position,
                       (SELECT version FROM streams WHERE name = ?),
                       (SELECT count(*) FROM projection_checkpoints s JOIN projection_checkpoints m
                          ON m.name = ? AND m.position = s.position WHERE s.name = ?)
                FROM ticket_summaries t WHERE t.stream = (SELECT key FROM streams WHERE name = ?)
                """,
                [
                    .text(StreamID.erasures.rawValue), .text(MessageHistoryProjection().name),
                    .text(TicketSummaryProjection().name), .text(stream.rawValue),
                ])
        else { return nil }
        let parties = TicketParties(brand: row[0].text, creator: row[1].text, agent: row[2].text)
        guard let lastPosition = row[3].integer, row[5].integer == 1 else { return (parties, nil) }
        return (parties, TicketContentMark(lastPosition: lastPosition, erasures: row[4].integer ?? 0))
    }

    /// ``messages(of:from:direction:limit:includeDeleted:)`` with the ticket's content mark read
    /// in the same snapshot: the page is the same for every read under an equal mark. The mark is
    /// `nil` when the ticket has no events, or while a projection the page comes from is rebuilt
    /// or caught up alone (the page can then change while the mark stays).
    public func markedMessages(
        of stream: StreamID, from cursor: MessageCursor? = nil, direction: ReadDirection = .forwards,
        limit: Int = 50, includeDeleted: Bool = true
    ) async throws -> (messages: [TicketState.Message], mark: TicketContentMark?) {
        try await readSession { session in
            let messages = try self.ticketReads(session).messages(
                of: stream, from: cursor, direction: direction, limit: limit, includeDeleted: includeDeleted)
            return (messages, try Self.ticketAccess(stream, session)?.mark)
        }
    }

    /// The tickets matching `filter` (every condition given must hold), most recently active first.
    public func tickets(_ filter: TicketFilter = .all, limit: Int = 1_000) async throws -> [TicketSummary] {
        try await readSession { session in try self.ticketReads(session).tickets(filter, limit: limit) }
    }

    /// How many tickets (streams) the log holds.
    public func ticketCount() async throws -> Int {
        try await readSession { session in try self.ticketReads(session).ticketCount() }
    }

    /// The members of `stream`'s channel now, in joining order.
    public func members(of stream: StreamID) async throws -> [TicketState.Member] {
        try await readSession { session in try self.ticketReads(session).members(of: stream) }
    }

    /// Who was in `stream`'s channel when the message `messageID` was posted (and so could see it).
    /// `nil` when the ticket has no such message.
    public func membersWhenPosted(_ messageID: String, in stream: StreamID) async throws -> [TicketState.Member]? {
        try await readSession { session in try self.ticketReads(session).membersWhenPosted(messageID, in: stream) }
    }

    /// A page of `stream`'s messages with edits and deletes applied, from `cursor` on.
    public func messages(
        of stream: StreamID, from cursor: MessageCursor? = nil, direction: ReadDirection = .forwards,
        limit: Int = 50, includeDeleted: Bool = true
    ) async throws -> [TicketState.Message] {
        try await readSession { session in
            try self.ticketReads(session).messages(
                of: stream, from: cursor, direction: direction, limit: limit, includeDeleted: includeDeleted)
        }
    }

    /// One message of `stream` with edits and deletes applied; `nil` when there is none.
    public func message(_ messageID: String, in stream: StreamID) async throws -> TicketState.Message? {
        try await readSession { session in try self.ticketReads(session).message(messageID, in: stream) }
    }

    /// The state of `stream` at a point in time (now when `point` is `nil`), with only its last
    /// `count` messages when `count` is given (the earlier ones counted in
    /// ``TicketState/messagesOmitted``). A ticket that did not exist yet has the empty state
    /// (version 0).
    ///
    /// The state is a fold of the ticket's events. The current state with a message count is
    /// read from the projections instead, in one snapshot, when they hold every event of the
    /// ticket: a few rows rather than every event decoded (a ticket of 10,000 events took ~27 ms
    /// to fold). The answer is the same (tested on every ticket of seeded logs, erasures
    /// included); the fold answers while a projection is rebuilt or caught up alone.
    public func ticketState(
        _ stream: StreamID, at point: PointInTime? = nil, keepingLastMessages count: Int? = nil
    ) async throws -> TicketState {
        if point == nil, let count,
            let state = try await readSession({ session in
                try self.ticketReads(session).currentState(stream, lastMessages: max(0, count))
            })
        {
            return state
        }
        let state = try await foldedState(stream, at: point)
        return count.map(state.keepingLastMessages) ?? state
    }

    /// The state of `stream` at `point`, folded from its events.
    private func foldedState(_ stream: StreamID, at point: PointInTime?) async throws -> TicketState {
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

    /// The events at `positions`, by position, read in one statement through SQLite's C API (a
    /// page of messages reads its texts' events so: a statement per message was a third of the
    /// server's CPU for `GET …/messages`). Throws when one is missing.
    func events(at positions: [Int64], _ db: Database) throws -> [Int64: RecordedEvent] {
        guard !positions.isEmpty else { return [:] }
        let list = "[" + positions.map(String.init).joined(separator: ",") + "]"
        var events: [Int64: RecordedEvent] = [:]
        events.reserveCapacity(positions.count)
        try forEachStoredEvent(
            db, sql: "SELECT \(Self.eventColumns) FROM events WHERE position IN (SELECT value FROM json_each(?))",
            [.text(list)]
        ) { event, _ in events[event.position] = try decodeRecord(event, db: db) }
        if let missing = positions.first(where: { events[$0] == nil }) { throw TicketReads.missing(missing) }
        return events
    }

    /// The event at `position`, read in `db`.
    func event(at position: Int64, _ db: Database) throws -> RecordedEvent {
        guard
            let event = try decodeRecords(
                db, sql: "SELECT \(Self.eventColumns) FROM events WHERE position = ?", [.integer(position)]
            ).first
        else {
            throw EventStoreError.corrupt(
                "a projection points at position \(position), which the log does not hold", position: position)
        }
        return event
    }
}
