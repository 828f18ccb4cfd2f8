/// Who is in each ticket's channel now (`members`), and every stay from join to leave
/// (`membership_intervals`, the open ones with no leave yet).
///
/// A second join of a present member changes nothing; a leave of someone not present changes
/// nothing.
struct MembershipProjection: Projection {
    let name = "membership"
    let version = 1
    let tables = ["members", "membership_intervals"]

    // `user` is quoted: PostgreSQL reserves the word (unquoted, it is the session's user name).
    func schema(_ dialect: SQLDialect) -> [String] {
        [
            """
            CREATE TABLE members (
                stream INTEGER NOT NULL,
                "user" TEXT NOT NULL,
                role TEXT NOT NULL,
                joined_at INTEGER NOT NULL,
                joined_position INTEGER NOT NULL,
                PRIMARY KEY (stream, "user")
            ) WITHOUT ROWID, STRICT
            """,
            "CREATE INDEX members_by_user ON members(\"user\", stream)",
            """
            CREATE TABLE membership_intervals (
                stream INTEGER NOT NULL,
                "user" TEXT NOT NULL,
                role TEXT NOT NULL,
                joined_position INTEGER NOT NULL,
                joined_at INTEGER NOT NULL,
                left_position INTEGER,
                left_at INTEGER,
                PRIMARY KEY (stream, joined_position, "user")
            ) WITHOUT ROWID, STRICT
            """,
            "CREATE INDEX membership_intervals_by_user ON membership_intervals(\"user\", stream)",
        ].map(dialect.schema)
    }

    func apply(_ projected: ProjectedEvent, _ session: any SQLSession) throws {
        let event = projected.event
        let at = event.occurredAt.microsecondsSinceEpoch
        switch event.payload {
        case .memberJoined(let joined):
            let role = SQLValue.text(joined.role.rawValue)
            let inserted = try session.execute(
                """
                INSERT INTO members(stream, "user", role, joined_at, joined_position) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(stream, "user") DO NOTHING
                """,
                [.integer(projected.streamKey), .text(joined.user), role, .integer(at), .integer(event.position)])
            guard inserted > 0 else { return }
            try session.send(
                """
                INSERT INTO membership_intervals(stream, "user", role, joined_position, joined_at)
                VALUES (?, ?, ?, ?, ?)
                """,
                [.integer(projected.streamKey), .text(joined.user), role, .integer(event.position), .integer(at)])
        case .memberLeft(let left):
            let deleted = try session.execute(
                "DELETE FROM members WHERE stream = ? AND \"user\" = ?",
                [.integer(projected.streamKey), .text(left.user)])
            guard deleted > 0 else { return }
            try session.send(
                """
                UPDATE membership_intervals SET left_position = ?, left_at = ?
                WHERE stream = ? AND "user" = ? AND left_position IS NULL
                """, [.integer(event.position), .integer(at), .integer(projected.streamKey), .text(left.user)])
        default:
            return
        }
    }
}
