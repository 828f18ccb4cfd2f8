import Foundation
import GRDB

/// A full-text search of message text (issue 18).
public struct MessageSearch: Sendable, Equatable {
    /// What a person typed: words, all required; a word ending in `*` matches as a prefix.
    public var text: String
    /// Only this ticket.
    public var ticket: StreamID?
    /// Only messages posted at or after / before these times.
    public var from: Timestamp?
    public var to: Timestamp?
    /// Only tickets matching this filter (the tickets the caller may read).
    public var tickets: TicketFilter
    public var limit: Int

    public init(
        _ text: String, ticket: StreamID? = nil, from: Timestamp? = nil, to: Timestamp? = nil,
        tickets: TicketFilter = .all, limit: Int = 50
    ) {
        self.text = text
        self.ticket = ticket
        self.from = from
        self.to = to
        self.tickets = tickets
        self.limit = limit
    }
}

/// A message found by a search (newest text first).
public struct SearchHit: Sendable, Equatable {
    /// A piece of the snippet: plain text, or text that matched the query.
    public struct Part: Sendable, Equatable, Codable {
        public var text: String
        public var match: Bool
    }

    public var ticket: StreamID
    public var messageID: String
    /// The position of the message's post.
    public var position: Int64
    public var author: Actor
    public var postedAt: Timestamp
    public var editedAt: Timestamp?
    /// The position of the event holding the text found: the post, or the message's last edit.
    /// Hits come newest text first.
    public var textPosition: Int64
    /// A passage of the message's current text around what matched.
    public var snippet: [Part]
}

extension EventStore {
    /// The messages whose current text has every word of `search.text`, newest text first in
    /// the log's order (a message's last edit counts), among the tickets `search` allows.
    /// Deleted and erased messages are not found.
    ///
    /// Not by relevance: the index keeps which documents hold a word, not how often or where
    /// (`detail=none`), and with all words required FTS5's bm25 scored every hit 0 — the order
    /// was the oldest first.
    ///
    /// - Throws: ``EventStoreError/Code/invalidEvent`` when the text has no word to search for.
    public func search(_ search: MessageSearch) async throws -> [SearchHit] {
        guard let query = MessageSearchIndex.query(search.text) else {
            throw EventStoreError.invalid(
                "a search needs at least one word (letters or digits); \(search.text.debugDescription) has none")
        }
        let words = MessageSearchIndex.searchWords(search.text)
        if let shared { return try await self.search(search, words: words, shared) }
        let filters = Self.filters(of: search)
        let conditions = ["\(MessageSearchIndex.table) MATCH ?", "m.deleted_at IS NULL"] + filters.conditions
        var arguments: StatementArguments = [query]
        arguments += StatementArguments(filters.arguments.map(SQLiteSession.databaseValue))
        let limit = Self.pageSize(of: search)
        let columns = """
            SELECT s.name, m.message_id, m.position, m.author, m.author_role, m.posted_at, m.edited_at,
                   m.text_position
            """
        let sql: String
        if filters.conditions.isEmpty {
            // Nothing to filter by but the words: the index walks its matches newest first and
            // stops at the page (no pass over every match). A document may be a replaced or
            // deleted text (the join drops it), so the index is asked for more than the page and
            // the page cut after the join.
            arguments += [limit * 2 + 16, limit]
            sql = """
                \(columns)
                FROM (SELECT rowid AS document FROM \(MessageSearchIndex.table)
                      WHERE \(MessageSearchIndex.table) MATCH ? ORDER BY rowid DESC LIMIT ?) found
                JOIN messages m ON m.text_position = found.document
                JOIN streams s ON s.key = m.stream
                ORDER BY m.text_position DESC LIMIT ?
                """
        } else {
            // Filtered: the index's matches joined to the caller's messages, the newest kept.
            arguments += [limit]
            sql = """
                \(columns)
                FROM \(MessageSearchIndex.table)
                JOIN messages m ON m.text_position = \(MessageSearchIndex.table).rowid
                JOIN streams s ON s.key = m.stream
                JOIN ticket_summaries t ON t.stream = m.stream
                WHERE \(conditions.joined(separator: " AND "))
                ORDER BY m.text_position DESC LIMIT ?
                """
        }
        return try await read { [arguments] db in
            guard try db.tableExists(MessageSearchIndex.table) else {
                // A log last opened for writing by a build before the index: read-only openings
                // do not build projections.
                throw EventStoreError(
                    code: .notFound,
                    message:
                        "\(self.path) has no search index yet: open it once for writing with this build (e.g. ticketlog rebuild --database \(self.path)) to build it"
                )
            }
            return try Row.fetchAll(db, sql: sql, arguments: arguments).compactMap { row -> SearchHit? in
                guard let textPosition = row[7] as Int64? else { return nil }
                let text = try self.event(at: textPosition, db).payload.messageText ?? ""
                return SearchHit(
                    ticket: StreamID(rawValue: row[0]) ?? .erasures, messageID: row[1], position: row[2],
                    author: Actor(id: row[3], role: Actor.Role(rawValue: row[4]) ?? .system),
                    postedAt: Timestamp(microsecondsSinceEpoch: row[5]),
                    editedAt: (row[6] as Int64?).map(Timestamp.init(microsecondsSinceEpoch:)),
                    textPosition: textPosition, snippet: MessageSearchIndex.snippet(text, words: words))
            }
        }
    }

    /// What narrows a search besides its words, on either backend: the tickets it allows
    /// (`t`), one ticket (`s`), the times messages were posted in (`m`).
    private static func filters(of search: MessageSearch) -> (conditions: [String], arguments: [SQLValue]) {
        var (conditions, arguments) = TicketReads.conditions(search.tickets)
        if let ticket = search.ticket {
            conditions.append("s.name = ?")
            arguments.append(.text(ticket.rawValue))
        }
        if let from = search.from {
            conditions.append("m.posted_at >= ?")
            arguments.append(.integer(from.microsecondsSinceEpoch))
        }
        if let to = search.to {
            conditions.append("m.posted_at < ?")
            arguments.append(.integer(to.microsecondsSinceEpoch))
        }
        return (conditions, arguments)
    }

    /// How many hits a page of `search` holds at most.
    private static func pageSize(of search: MessageSearch) -> Int { max(0, min(search.limit, 1_000)) }

    /// ``search(_:)`` on PostgreSQL: documents are lexeme arrays (``SearchTerms``, the words
    /// FTS5 makes on SQLite) under a GIN index, so the query is the same words as a `tsquery`
    /// (all required, `:*` for a prefix) and finds the same messages, in the same order (newest
    /// text first).
    private func search(_ search: MessageSearch, words: [MessageSearchIndex.Word], _ shared: SharedStorage)
        async throws -> [SearchHit]
    {
        // Each typed word may be several terms once folded as the index folds text; a prefix
        // applies to the last of them. Terms are letters, digits and marks: nothing to quote.
        let terms = words.flatMap { word in
            let folded = SearchTerms.words(word.text)
            return folded.enumerated().map { index, term in
                "'\(term)'" + (word.prefix && index == folded.count - 1 ? ":*" : "")
            }
        }
        guard !terms.isEmpty else { return [] }
        let filters = Self.filters(of: search)
        let conditions = ["d.document @@ q.query", "m.deleted_at IS NULL"] + filters.conditions
        let arguments: [SQLValue] =
            [.text(terms.joined(separator: " & "))] + filters.arguments + [.integer(Int64(Self.pageSize(of: search)))]
        let sql = """
            SELECT s.name, m.message_id, m.position, m.author, m.author_role, m.posted_at, m.edited_at,
                   m.text_position
            FROM (SELECT ?::tsquery AS query) q
            JOIN \(MessageSearchIndex.table) d ON d.document @@ q.query
            JOIN messages m ON m.text_position = d.position
            JOIN streams s ON s.key = m.stream
            JOIN ticket_summaries t ON t.stream = m.stream
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY m.text_position DESC LIMIT ?
            """
        return try await readSession { [arguments] session in
            let reads = self.ticketReads(session)
            return try session.rows(sql, arguments).compactMap { row -> SearchHit? in
                guard let textPosition = row[7].integer else { return nil }
                let text = try reads.event(textPosition).payload.messageText ?? ""
                return SearchHit(
                    ticket: StreamID(rawValue: row[0].text ?? "") ?? .erasures, messageID: row[1].text ?? "",
                    position: row[2].integer ?? 0,
                    author: Actor(id: row[3].text ?? "", role: row[4].text.flatMap(Actor.Role.init) ?? .system),
                    postedAt: Timestamp(microsecondsSinceEpoch: row[5].integer ?? 0),
                    editedAt: row[6].integer.map(Timestamp.init(microsecondsSinceEpoch:)),
                    textPosition: textPosition, snippet: MessageSearchIndex.snippet(text, words: words))
            }
        }
    }

    /// Takes out of the search index every text sealed with one of `keys` — each post and edit
    /// is a document — while those keys still open it (an erasure, before it destroys them).
    /// `candidates` narrows the events to look at: a condition on `e`, with its arguments.
    func forgetSearchTexts(
        sealedWith keys: Set<String>, candidates: (condition: String, arguments: [SQLValue])?,
        _ session: any SQLSession
    ) throws {
        guard !keys.isEmpty else { return }
        if session.dialect == .sqlite {
            guard try (session as! SQLiteSession).db.tableExists(MessageSearchIndex.table) else { return }
        }
        // Only what the index holds: a projection being rebuilt has indexed the events up to its
        // checkpoint (removing a document a contentless FTS5 table does not hold damages it);
        // those after it are indexed once the keys are gone, so as erased. One whose index is
        // built beside it (``SearchIndexBuilder``) has nothing in the log's index yet, and that
        // index is not used after an erasure.
        let history = try ProjectionCheckpoints.fetchAll(session)[MessageHistoryProjection().name]
        let indexed = history?.version == MessageHistoryProjection.besideVersion ? 0 : history?.position ?? 0
        let condition = """
            e.type IN (SELECT key FROM event_types WHERE name IN ('message.posted', 'message.edited'))\(candidates.map { " AND " + $0.condition } ?? "") AND e.position <= \(indexed) AND e.position > ? ORDER BY e.position LIMIT 1000
            """
        var removals: [(Int64, String)] = []
        var documents: [Int64] = []
        // The events as stored, a page at a time, to read which key seals each text; then
        // opened (on SQLite, an FTS5 contentless index removes a document only given the text it
        // indexed).
        var page: [StoredEvent] = []
        repeat {
            page = try storedEvents(
                session, where: condition, (candidates?.arguments ?? []) + [.integer(page.last?.position ?? 0)])
            for stored in page {
                let sealed = try Self.decodeRecord(
                    stored: stored.stored, columns: stored.columns, position: stored.position, version: stored.version)
                guard let text = sealed.payload.messageText, let id = SealedField.keyID(of: text),
                    keys.contains(String(id))
                else { continue }
                guard session.dialect == .sqlite else {
                    documents.append(stored.position)
                    continue
                }
                let opened = try keyring.map { try $0.open(sealed, session) } ?? sealed
                if let plain = opened.payload.messageText, MessageSearchIndex.isIndexable(plain, of: opened) {
                    removals.append((stored.position, plain))
                }
            }
        } while !page.isEmpty
        if session.dialect == .sqlite {
            let db = (session as! SQLiteSession).db
            for (document, text) in removals { try MessageSearchIndex.remove(document, text: text, db) }
        } else {
            for start in stride(from: 0, to: documents.count, by: 500) {
                let chunk = documents[start..<min(start + 500, documents.count)]
                try session.execute(
                    "DELETE FROM \(MessageSearchIndex.table) WHERE position IN (\(chunk.map(String.init).joined(separator: ", ")))",
                    [])
            }
        }
    }
}
