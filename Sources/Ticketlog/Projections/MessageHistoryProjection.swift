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
struct MessageHistoryProjection: Projection {
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

    func apply(_ projected: ProjectedEvent, _ session: any SQLSession) throws {
        let event = projected.event
        let at = event.occurredAt.microsecondsSinceEpoch
        switch event.payload {
        case .messagePosted(let posted):
            // A repeated message id (e.g. mirrored twice) keeps the first post.
            try session.send(
                """
                INSERT INTO messages(stream, message_id, position, author, author_role, text_position, posted_at, edits)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0)
                ON CONFLICT(stream, message_id) DO NOTHING
                """,
                [
                    .integer(projected.streamKey), .text(posted.messageID), .integer(event.position),
                    .text(event.actor.id), .text(event.actor.role.rawValue), .integer(event.position), .integer(at),
                ])
            if MessageSearchIndex.isIndexable(posted.text, of: event) {
                try MessageSearchIndex.add(event.position, text: posted.text, session)
            }
        case .messageEdited(let edited):
            if MessageSearchIndex.isIndexable(edited.text, of: event) {
                try MessageSearchIndex.add(event.position, text: edited.text, session)
            }
            try session.send(
                """
                UPDATE messages SET text_position = ?, edited_at = ?, edits = edits + 1
                WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                """,
                [.integer(event.position), .integer(at), .integer(projected.streamKey), .text(edited.messageID)])
        case .messageDeleted(let deleted):
            try session.send(
                """
                UPDATE messages SET text_position = NULL, deleted_at = ?
                WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                """, [.integer(at), .integer(projected.streamKey), .text(deleted.messageID)])
        default:
            return
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
