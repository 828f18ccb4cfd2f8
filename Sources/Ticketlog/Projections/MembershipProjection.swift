import GRDB

/// Who is in each ticket's channel now (`members`), and every stay from join to leave
/// (`membership_intervals`, the open ones with no leave yet).
///
/// A second join of a present member changes nothing; a leave of someone not present changes
/// nothing.
struct MembershipProjection: Projection {
    let name = "membership"
    let version = 1
    let tables = ["members", "membership_intervals"]

    func createSchema(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE members (
                    stream INTEGER NOT NULL,
                    user TEXT NOT NULL,
                    role TEXT NOT NULL,
                    joined_at INTEGER NOT NULL,
                    joined_position INTEGER NOT NULL,
                    PRIMARY KEY (stream, user)
                ) WITHOUT ROWID, STRICT;
                CREATE INDEX members_by_user ON members(user, stream);
                CREATE TABLE membership_intervals (
                    stream INTEGER NOT NULL,
                    user TEXT NOT NULL,
                    role TEXT NOT NULL,
                    joined_position INTEGER NOT NULL,
                    joined_at INTEGER NOT NULL,
                    left_position INTEGER,
                    left_at INTEGER,
                    PRIMARY KEY (stream, joined_position, user)
                ) WITHOUT ROWID, STRICT;
                CREATE INDEX membership_intervals_by_user ON membership_intervals(user, stream);
                """)
    }

    func apply(_ projected: ProjectedEvent, _ db: Database) throws {
        let event = projected.event
        let at = event.occurredAt.microsecondsSinceEpoch
        switch event.payload {
        case .memberJoined(let joined):
            try db.cachedStatement(
                sql: """
                    INSERT INTO members(stream, user, role, joined_at, joined_position) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(stream, user) DO NOTHING
                    """
            ).execute(arguments: [projected.streamKey, joined.user, joined.role.rawValue, at, event.position])
            guard db.changesCount > 0 else { return }
            try db.cachedStatement(
                sql: """
                    INSERT INTO membership_intervals(stream, user, role, joined_position, joined_at)
                    VALUES (?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [projected.streamKey, joined.user, joined.role.rawValue, event.position, at])
        case .memberLeft(let left):
            try db.cachedStatement(sql: "DELETE FROM members WHERE stream = ? AND user = ?")
                .execute(arguments: [projected.streamKey, left.user])
            guard db.changesCount > 0 else { return }
            try db.cachedStatement(
                sql: """
                    UPDATE membership_intervals SET left_position = ?, left_at = ?
                    WHERE stream = ? AND user = ? AND left_position IS NULL
                    """
            ).execute(arguments: [event.position, at, projected.streamKey, left.user])
        default:
            return
        }
    }
}
