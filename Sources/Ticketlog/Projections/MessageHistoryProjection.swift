import Foundation
import GRDB

/// Every message of every ticket with edits and deletes applied: the current text, how often it
/// was edited, and a deleted message as a tombstone (text removed, `deleted_at` set). The
/// original words stay in the log.
///
/// An edit or delete of a message the ticket never had changes nothing.
struct MessageHistoryProjection: Projection {
    let name = "message_history"
    let version = 1
    let tables = ["messages"]

    func createSchema(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE messages (
                    stream INTEGER NOT NULL,
                    message_id TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    author TEXT NOT NULL,
                    author_role TEXT NOT NULL,
                    text TEXT,
                    attachments TEXT,
                    posted_at INTEGER NOT NULL,
                    edited_at INTEGER,
                    edits INTEGER NOT NULL,
                    deleted_at INTEGER,
                    PRIMARY KEY (stream, message_id)
                ) WITHOUT ROWID, STRICT;
                CREATE UNIQUE INDEX messages_by_position ON messages(stream, position);
                CREATE INDEX messages_by_time ON messages(stream, posted_at, position);
                """)
    }

    func apply(_ projected: ProjectedEvent, _ db: Database) throws {
        let event = projected.event
        let at = event.occurredAt.microsecondsSinceEpoch
        switch event.payload {
        case .messagePosted(let posted):
            let attachments =
                posted.attachments.isEmpty
                ? nil : String(decoding: try CanonicalJSON.encode(posted.attachments), as: UTF8.self)
            // A repeated message id (e.g. mirrored twice) keeps the first post.
            try db.cachedStatement(
                sql: """
                    INSERT INTO messages(stream, message_id, position, author, author_role, text, attachments, posted_at, edits)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
                    ON CONFLICT(stream, message_id) DO NOTHING
                    """
            ).execute(arguments: [
                projected.streamKey, posted.messageID, event.position, event.actor.id, event.actor.role.rawValue,
                posted.text, attachments, at,
            ])
        case .messageEdited(let edited):
            try db.cachedStatement(
                sql: """
                    UPDATE messages SET text = ?, edited_at = ?, edits = edits + 1
                    WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                    """
            ).execute(arguments: [edited.text, at, projected.streamKey, edited.messageID])
        case .messageDeleted(let deleted):
            try db.cachedStatement(
                sql: """
                    UPDATE messages SET text = NULL, attachments = NULL, deleted_at = ?
                    WHERE stream = ? AND message_id = ? AND deleted_at IS NULL
                    """
            ).execute(arguments: [at, projected.streamKey, deleted.messageID])
        default:
            return
        }
    }
}
