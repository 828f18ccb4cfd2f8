import Foundation

/// Every message of every ticket with edits and deletes applied: where its current text is, how
/// often it was edited, and a deleted message as a tombstone (`text_position` cleared,
/// `deleted_at` set). The original words stay in the log.
///
/// Since version 2 it keeps no text: `text_position` is the event holding the current text (the
/// post or the last edit), read from the events table when a message is read — one copy of every
/// text in the file, and none for erasure to hunt down. Version 3 dropped the index by time: a
/// page by time reads one ticket's messages (by position, since version 7 the table's own order)
/// and sorts them.
///
/// Version 4 added the full-text index (``MessageSearchIndex``): one document per post and per
/// edit, under its event's position, never removed by an edit or delete (a removal costs FTS5 a
/// flush of its pending terms: 0.8M instructions each on the bench). What is searched is each
/// message's *current* text: a search joins a document to the message whose `text_position` it
/// is (`messages_by_text`), so a replaced or deleted text is not found.
///
/// Version 7 keys the rows by ticket and post position (the order a page reads them in, so a
/// page is one range of the table) and finds a message by id through `messages_by_id(message_id,
/// stream)`: ids the library mints are ordered by time (``Foundation/UUID/timeOrdered(at:)``),
/// so that index grows at its end. Keyed by `(stream, message_id)` with an index by position, a
/// post wrote into two B-trees at the page of its ticket; a `POST …/messages` group commit of
/// ~8 posts for as many tickets wrote ~24 pages of the two (of ~51 in all), and now ~14 (of ~42).
///
/// An edit or delete of a message the ticket never had changes nothing.
struct MessageHistoryProjection: TransactionalProjection {
    let name = "message_history"
    /// The projection's version; its checkpoint carries ``besideVersion`` instead while the
    /// search index is built beside a catch-up (``SearchIndexBuilder``).
    static let currentVersion = 7
    /// Never a build's version: a message history whose checkpoint has it was being caught up
    /// with its search index built apart, and is rebuilt from the start.
    static let besideVersion = -currentVersion
    /// Where this transaction's search documents go instead of the index (a catch-up on a file
    /// from the first event: ``SearchIndexBuilder``).
    var searchBuilder: SearchIndexBuilder?
    var version: Int { searchBuilder == nil ? Self.currentVersion : Self.besideVersion }
    let tables = ["messages", MessageSearchIndex.terms, MessageSearchIndex.table]

    func tables(_ dialect: SQLDialect) -> [String] {
        ["messages"] + MessageSearchIndex.tables(dialect)
    }

    func schema(_ dialect: SQLDialect) -> [String] {
        [
            """
            CREATE TABLE messages (
                stream INTEGER NOT NULL,
                message_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                author TEXT NOT NULL,
                author_role TEXT NOT NULL,
                text_position INTEGER,
                posted_at INTEGER NOT NULL,
                edited_at INTEGER,
                edits INTEGER NOT NULL,
                deleted_at INTEGER,
                PRIMARY KEY (stream, position)
            ) WITHOUT ROWID, STRICT
            """,
            "CREATE UNIQUE INDEX messages_by_id ON messages(message_id, stream)",
            "CREATE UNIQUE INDEX messages_by_text ON messages(text_position) WHERE text_position IS NOT NULL",
        ].map(dialect.schema) + MessageSearchIndex.schema(dialect)
    }

    func clear(_ session: any SQLSession) throws {
        try session.execute("DELETE FROM messages")
        try MessageSearchIndex.clear(session)
    }

    func transaction() -> Transaction {
        Transaction(searchBuilder: searchBuilder)
    }

    /// The messages of one write transaction. On SQLite each post, edit and delete is written as
    /// it comes. On PostgreSQL, where every statement is a round trip, they are gathered and
    /// written at the end of the transaction: first one update per message for its edits and
    /// delete (gathered as they would have applied one by one: edits until the first delete,
    /// nothing after it, all only if the stored row is not deleted already), then the posts
    /// (merged into one insert; a post edited or deleted within the transaction carries that).
    /// Both halves are needed because whether a message is stored already is not read: a stored
    /// one takes the update and refuses the post (`DO NOTHING`); a new one finds no row to
    /// update and is inserted with the edits that came after its post. Search documents go the
    /// other way: kept for the end on SQLite (FTS5), sent as they come on PostgreSQL.
    struct Transaction: ProjectionTransaction {
        /// Takes the documents instead of the index, when set.
        let searchBuilder: SearchIndexBuilder?

        init(searchBuilder: SearchIndexBuilder?) {
            self.searchBuilder = searchBuilder
        }

        /// What edits and deletes change of a message, applied as the updates on SQLite do: an
        /// edit or delete of a deleted message changes nothing.
        struct Edits {
            var textPosition: Int64?
            var editedAt: Int64?
            var edits: Int64 = 0
            var deletedAt: Int64?

            mutating func edit(at position: Int64, time: Int64) {
                guard deletedAt == nil else { return }
                textPosition = position
                editedAt = time
                edits += 1
            }

            mutating func delete(time: Int64) {
                guard deletedAt == nil else { return }
                textPosition = nil
                deletedAt = time
            }
        }

        struct Post {
            var stream: Int64
            var messageID: String
            var position: Int64
            var author: String
            var authorRole: String
            var postedAt: Int64
            /// From its post on (`textPosition` starts at the post).
            var state: Edits
        }

        struct Key: Hashable {
            var stream: Int64
            var messageID: String
        }

        /// The posts kept, by key, in the order they came.
        private var posts: [Key: Int] = [:]
        private var kept: [Post] = []
        /// A stored message's edits and delete within the transaction (`edits` counts them).
        private var changes: [Key: Edits] = [:]
        /// On SQLite, the search documents of the transaction, in position order, indexed in
        /// ``finish(_:)`` (on PostgreSQL they are sent as they come: `index`):
        /// after the appends' savepoints, not inside them. FTS5 writes its pending terms to a new
        /// segment of the index at every savepoint it takes part in, so documents added inside
        /// each append's savepoint cost a segment per append (and the merges after) instead of
        /// one per transaction: a tenth of the batched append's instructions.
        private var documents: [(position: Int64, text: String)] = []
        /// How many documents there were when the current append began.
        private var documentsBeforeAppend = 0

        mutating func beginAppend() {
            documentsBeforeAppend = documents.count
        }

        /// Only SQLite's writer rolls an append back alone (its savepoint), and there the posts
        /// and changes go out as they come: nothing but the search documents is kept in memory.
        /// PostgreSQL's writer (``LogWriter``) decides everything that can refuse an append
        /// before the append writes, so what it gathers is never taken back alone.
        mutating func rollBackAppend() {
            assert(kept.isEmpty && changes.isEmpty, "an append rolled back alone after its messages were gathered")
            documents.removeSubrange(documentsBeforeAppend...)
        }

        mutating func apply(_ projected: ProjectedEvent, _ session: any SQLSession) throws {
            let event = projected.event
            let at = event.occurredAt.microsecondsSinceEpoch
            let stream = projected.streamKey
            let gathers = session.dialect == .postgres
            switch event.payload {
            case .messagePosted(let posted):
                // A repeated message id (e.g. mirrored twice) keeps the first post.
                let key = Key(stream: stream, messageID: posted.messageID)
                if gathers {
                    if posts[key] == nil {
                        posts[key] = kept.count
                        kept.append(
                            Post(
                                stream: stream, messageID: posted.messageID, position: event.position,
                                author: event.actor.id, authorRole: event.actor.role.rawValue, postedAt: at,
                                state: Edits(textPosition: event.position)))
                    }
                } else {
                    try session.send(
                        Self.insertPost,
                        [
                            .integer(stream), .text(posted.messageID), .integer(event.position),
                            .text(event.actor.id), .text(event.actor.role.rawValue), .integer(event.position),
                            .integer(at),
                        ])
                }
                if MessageSearchIndex.isIndexable(posted.text, of: event) {
                    try index(event.position, posted.text, session)
                }
            case .messageEdited(let edited):
                if MessageSearchIndex.isIndexable(edited.text, of: event) {
                    try index(event.position, edited.text, session)
                }
                let key = Key(stream: stream, messageID: edited.messageID)
                if gathers {
                    change(key) { $0.edit(at: event.position, time: at) }
                } else {
                    try session.send(
                        """
                        UPDATE messages SET text_position = ?, edited_at = ?, edits = edits + 1
                        WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                        """,
                        [.integer(event.position), .integer(at), .integer(stream), .text(edited.messageID)])
                }
            case .messageDeleted(let deleted):
                let key = Key(stream: stream, messageID: deleted.messageID)
                if gathers {
                    change(key) { $0.delete(time: at) }
                } else {
                    try session.send(
                        """
                        UPDATE messages SET text_position = NULL, deleted_at = ?
                        WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                        """, [.integer(at), .integer(stream), .text(deleted.messageID)])
                }
            default:
                return
            }
        }

        /// A search document: kept for ``finish(_:)`` on SQLite (see `documents`); sent at once
        /// on PostgreSQL, where nothing of an append is rolled back alone and a statement sent
        /// is worked on by the server while this side goes on: kept to the end, the documents'
        /// GIN insertion (17–24 ms per 1,000 events) ran after everything else, with the
        /// client waiting for it.
        private mutating func index(_ position: Int64, _ text: String, _ session: any SQLSession) throws {
            if session.dialect == .postgres {
                try MessageSearchIndex.add(position, text: text, session)
            } else {
                documents.append((position, text))
                // Handed over as they come, a batch at a time: a catch-up rolls nothing back alone.
                if let searchBuilder, documents.count >= SearchIndexBuilder.batch {
                    try searchBuilder.submit(documents)
                    documents.removeAll(keepingCapacity: true)
                }
            }
        }

        /// Applies an edit or delete to the message's post kept in this transaction (if any) and
        /// to its gathered change.
        private mutating func change(_ key: Key, _ body: (inout Edits) -> Void) {
            if let index = posts[key] { body(&kept[index].state) }
            body(&changes[key, default: Edits()])
        }

        mutating func finish(_ session: any SQLSession) throws {
            if let searchBuilder {
                try searchBuilder.submit(documents)
            } else {
                for document in documents {
                    try MessageSearchIndex.add(document.position, text: document.text, session)
                }
            }
            documents.removeAll(keepingCapacity: true)
            documentsBeforeAppend = 0
            try finishForDecision(session)
        }

        /// The messages' rows, not the search documents: no decision searches, and on SQLite
        /// documents indexed before a decision made FTS5 write a segment at each later append's
        /// savepoint (every `POST …/messages` of a group commit decides): 13.5% of the writer's
        /// samples under `POST` load.
        mutating func finishForDecision(_ session: any SQLSession) throws {
            let gathered = changes.map { ($0.key, $0.value) }
            for start in stride(from: 0, to: gathered.count, by: 400) {
                let chunk = gathered[start..<min(start + 400, gathered.count)]
                let row =
                    "(CAST(? AS bigint), CAST(? AS text), CAST(? AS bigint), CAST(? AS bigint), "
                    + "CAST(? AS bigint), CAST(? AS bigint))"
                try session.send(
                    """
                    UPDATE messages AS m SET edits = m.edits + u.edits, text_position = u.text_position,
                        edited_at = coalesce(u.edited_at, m.edited_at), deleted_at = u.deleted_at
                    FROM (VALUES \(Array(repeating: row, count: chunk.count).joined(separator: ", ")))
                        AS u(stream, message_id, edits, text_position, edited_at, deleted_at)
                    WHERE m.stream = u.stream AND m.message_id = u.message_id AND m.deleted_at IS NULL
                    """,
                    chunk.flatMap { key, change -> [SQLValue] in
                        [
                            .integer(key.stream), .text(key.messageID), .integer(change.edits),
                            .optional(change.textPosition), .optional(change.editedAt), .optional(change.deletedAt),
                        ]
                    })
            }
            // The plain posts, then those edited or deleted within the transaction: each kind
            // merges into one insert on PostgreSQL only when the other does not come between (the
            // keys are distinct, so the order changes nothing).
            for post in kept where post.state.edits == 0 && post.state.deletedAt == nil {
                try session.send(
                    Self.insertPost,
                    [
                        .integer(post.stream), .text(post.messageID), .integer(post.position), .text(post.author),
                        .text(post.authorRole), .optional(post.state.textPosition), .integer(post.postedAt),
                    ])
            }
            for post in kept where post.state.edits != 0 || post.state.deletedAt != nil {
                let state = post.state
                try session.send(
                    """
                    INSERT INTO messages(stream, message_id, position, author, author_role, text_position,
                        posted_at, edited_at, edits, deleted_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(stream, message_id) DO NOTHING
                    """,
                    [
                        .integer(post.stream), .text(post.messageID), .integer(post.position), .text(post.author),
                        .text(post.authorRole), .optional(state.textPosition), .integer(post.postedAt),
                        .optional(state.editedAt), .integer(state.edits), .optional(state.deletedAt),
                    ])
            }
            changes.removeAll(keepingCapacity: true)
            kept.removeAll(keepingCapacity: true)
            posts.removeAll(keepingCapacity: true)
        }

        /// A post as it comes: nothing edited or deleted yet. Merged with its like on PostgreSQL
        /// (``SQLSession/send(_:_:)``); a message id the ticket has already keeps its row.
        private static let insertPost = """
            INSERT INTO messages(stream, message_id, position, author, author_role, text_position, posted_at, edits)
            VALUES (?, ?, ?, ?, ?, ?, ?, 0)
            ON CONFLICT(stream, message_id) DO NOTHING
            """
    }
}

extension EventPayload {
    /// The text of a post or an edit.
    var messageText: String? {
        switch self {
        case .messagePosted(let posted): posted.text
        case .messageEdited(let edited): edited.text
        default: nil
        }
    }
}
