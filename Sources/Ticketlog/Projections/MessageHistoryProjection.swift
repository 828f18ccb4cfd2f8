import Foundation

/// Every message of every ticket with edits and deletes applied: where its current text is, how
/// often it was edited, and a deleted message as a tombstone (`text_position` cleared,
/// `deleted_at` set). The original words stay in the log.
///
/// Since version 2 it keeps no text: `text_position` is the event holding the current text (the
/// post or the last edit), read from the events table when a message is read — one copy of every
/// text in the file, and none for erasure to hunt down. Version 3 dropped the index by time: a
/// page by time reads one ticket's messages through `messages_by_position` and sorts them.
///
/// Version 4 added the full-text index (``MessageSearchIndex``): one document per post and per
/// edit, under its event's position, never removed by an edit or delete (a removal costs FTS5 a
/// flush of its pending terms: 0.8M instructions each on the bench). What is searched is each
/// message's *current* text: a search joins a document to the message whose `text_position` it
/// is (`messages_by_text`), so a replaced or deleted text is not found.
///
/// An edit or delete of a message the ticket never had changes nothing.
struct MessageHistoryProjection: TransactionalProjection {
    let name = "message_history"
    let version = 5
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
                PRIMARY KEY (stream, message_id)
            ) WITHOUT ROWID, STRICT
            """,
            "CREATE UNIQUE INDEX messages_by_position ON messages(stream, position)",
            "CREATE UNIQUE INDEX messages_by_text ON messages(text_position) WHERE text_position IS NOT NULL",
        ].map(dialect.schema) + MessageSearchIndex.schema(dialect)
    }

    func clear(_ session: any SQLSession) throws {
        try session.execute("DELETE FROM messages")
        try MessageSearchIndex.clear(session)
    }

    func transaction() -> Transaction {
        Transaction()
    }

    /// The messages of one write transaction. On SQLite each post is inserted as it comes. On
    /// PostgreSQL the posts are kept and inserted together at the end of the transaction (one
    /// statement, not one round trip per post: ``SQLSession/send(_:_:)`` cannot merge inserts
    /// across the edits' updates of the same table). Edits and deletes are sent as they come
    /// either way, and also applied to the posts kept: an edit of a message stored earlier
    /// changes its row, one of a message posted in this transaction changes what is inserted,
    /// and a second post of a stored id is refused by the insert as before (`DO NOTHING`).
    struct Transaction: ProjectionTransaction {
        struct Post {
            var stream: Int64
            var messageID: String
            var position: Int64
            var author: String
            var authorRole: String
            var textPosition: Int64?
            var postedAt: Int64
            var editedAt: Int64?
            var edits: Int64
            var deletedAt: Int64?
        }

        struct Key: Hashable {
            var stream: Int64
            var messageID: String
        }

        /// The posts kept, by key, in the order they came.
        private var posts: [Key: Int] = [:]
        private var kept: [Post] = []
        /// What the current append changed of them: each key's post before it (`nil`: none).
        private var undo: [(key: Key, post: Post?)] = []

        mutating func beginAppend() {
            undo.removeAll(keepingCapacity: true)
        }

        mutating func rollBackAppend() {
            for change in undo.reversed() {
                if let post = change.post {
                    kept[posts[change.key]!] = post
                } else if let index = posts.removeValue(forKey: change.key) {
                    kept.remove(at: index)
                }
            }
            undo.removeAll(keepingCapacity: true)
        }

        mutating func apply(_ projected: ProjectedEvent, _ session: any SQLSession) throws {
            let event = projected.event
            let at = event.occurredAt.microsecondsSinceEpoch
            let stream = projected.streamKey
            switch event.payload {
            case .messagePosted(let posted):
                // A repeated message id (e.g. mirrored twice) keeps the first post.
                if session.dialect == .postgres {
                    let key = Key(stream: stream, messageID: posted.messageID)
                    if posts[key] == nil {
                        undo.append((key, nil))
                        posts[key] = kept.count
                        kept.append(
                            Post(
                                stream: stream, messageID: posted.messageID, position: event.position,
                                author: event.actor.id, authorRole: event.actor.role.rawValue,
                                textPosition: event.position, postedAt: at, edits: 0))
                    }
                } else {
                    try session.send(
                        """
                        INSERT INTO messages(stream, message_id, position, author, author_role, text_position, posted_at,
                            edits)
                        VALUES (?, ?, ?, ?, ?, ?, ?, 0)
                        ON CONFLICT(stream, message_id) DO NOTHING
                        """,
                        [
                            .integer(stream), .text(posted.messageID), .integer(event.position),
                            .text(event.actor.id), .text(event.actor.role.rawValue), .integer(event.position),
                            .integer(at),
                        ])
                }
                if MessageSearchIndex.isIndexable(posted.text, of: event) {
                    try MessageSearchIndex.add(event.position, text: posted.text, session)
                }
            case .messageEdited(let edited):
                if MessageSearchIndex.isIndexable(edited.text, of: event) {
                    try MessageSearchIndex.add(event.position, text: edited.text, session)
                }
                change(Key(stream: stream, messageID: edited.messageID)) { post in
                    post.textPosition = event.position
                    post.editedAt = at
                    post.edits += 1
                }
                try session.send(
                    """
                    UPDATE messages SET text_position = ?, edited_at = ?, edits = edits + 1
                    WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                    """,
                    [.integer(event.position), .integer(at), .integer(stream), .text(edited.messageID)])
            case .messageDeleted(let deleted):
                change(Key(stream: stream, messageID: deleted.messageID)) { post in
                    post.textPosition = nil
                    post.deletedAt = at
                }
                try session.send(
                    """
                    UPDATE messages SET text_position = NULL, deleted_at = ?
                    WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                    """, [.integer(at), .integer(stream), .text(deleted.messageID)])
            default:
                return
            }
        }

        /// Applies an edit or delete to a kept post that is not deleted, as the update does to
        /// a stored row.
        private mutating func change(_ key: Key, _ body: (inout Post) -> Void) {
            guard !kept.isEmpty, let index = posts[key], kept[index].deletedAt == nil else { return }
            if !undo.contains(where: { $0.key == key }) { undo.append((key, kept[index])) }
            body(&kept[index])
        }

        mutating func finish(_ session: any SQLSession) throws {
            guard !kept.isEmpty else { return }
            try Self.insert(kept, session)
            kept.removeAll(keepingCapacity: true)
            posts.removeAll(keepingCapacity: true)
        }

        private static func insertSQL(rows: Int) -> String {
            """
            INSERT INTO messages(stream, message_id, position, author, author_role, text_position, posted_at,
                edited_at, edits, deleted_at)
            VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", "))
            ON CONFLICT(stream, message_id) DO NOTHING
            """
        }

        /// Inserts posts, 500 per statement; a message id the ticket has already keeps its row.
        private static func insert(_ posts: [Post], _ session: any SQLSession) throws {
            for start in stride(from: 0, to: posts.count, by: 500) {
                let chunk = posts[start..<min(start + 500, posts.count)]
                try session.send(
                    insertSQL(rows: chunk.count),
                    chunk.flatMap { post -> [SQLValue] in
                        [
                            .integer(post.stream), .text(post.messageID), .integer(post.position), .text(post.author),
                            .text(post.authorRole), .optional(post.textPosition), .integer(post.postedAt),
                            .optional(post.editedAt), .integer(post.edits), .optional(post.deletedAt),
                        ]
                    })
            }
        }
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
