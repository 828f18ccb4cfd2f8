/// Who is in each ticket's channel now (`members`), and every stay from join to leave
/// (`membership_intervals`, the open ones with no leave yet).
///
/// A second join of a present member changes nothing; a leave of someone not present changes
/// nothing.
struct MembershipProjection: TransactionalProjection {
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

    func transaction() -> Transaction {
        Transaction()
    }

    /// Joins and leaves within one write transaction. For the streams read ahead
    /// (``ProjectionTransaction/prefetch(streams:_:)``) who is present is known in memory, so
    /// each join or leave is written without waiting for the database's answer; for others, the
    /// database says whether the join or leave changed anything.
    struct Transaction: ProjectionTransaction {
        /// Of the streams read ahead or created in this transaction: who is a member now.
        private var present: [Int64: Set<String>] = [:]

        mutating func prefetch(streams: [Int64], _ session: any SQLSession) throws {
            let unknown = streams.filter { present[$0] == nil }
            for key in unknown { present[key] = [] }
            for row in try session.rows(
                "SELECT stream, \"user\" FROM members WHERE stream IN", in: unknown.map(SQLValue.integer))
            {
                guard let key = row[0].integer, let user = row[1].text else { continue }
                present[key]?.insert(user)
            }
        }

        mutating func created(stream: Int64) {
            if present[stream] == nil { present[stream] = [] }
        }

        /// Only SQLite's writer rolls an append back alone (its savepoint), and it reads no
        /// stream ahead: there every join and leave asks the database, and nothing is kept in
        /// memory. PostgreSQL's writer (``LogWriter``), which reads ahead, decides everything that
        /// can refuse an append before the append writes, so what is kept is never taken back.
        mutating func rollBackAppend() {
            assert(present.isEmpty, "an append rolled back alone after its streams were read ahead")
        }

        mutating func finish(_ session: any SQLSession) throws {}

        mutating func apply(_ projected: ProjectedEvent, _ session: any SQLSession) throws {
            let event = projected.event
            let stream = projected.streamKey
            let at = event.occurredAt.microsecondsSinceEpoch
            let known = present[stream]
            switch event.payload {
            case .memberJoined(let joined):
                let role = SQLValue.text(joined.role.rawValue)
                let join: [SQLValue] = [
                    .integer(stream), .text(joined.user), role, .integer(at), .integer(event.position),
                ]
                if let known {
                    guard !known.contains(joined.user) else { return }
                    present[stream]?.insert(joined.user)
                    try session.send(
                        "INSERT INTO members(stream, \"user\", role, joined_at, joined_position) VALUES (?, ?, ?, ?, ?)",
                        join)
                } else {
                    let inserted = try session.execute(
                        """
                        INSERT INTO members(stream, "user", role, joined_at, joined_position) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT(stream, "user") DO NOTHING
                        """, join)
                    guard inserted > 0 else { return }
                }
                try session.send(
                    """
                    INSERT INTO membership_intervals(stream, "user", role, joined_position, joined_at)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                    [.integer(stream), .text(joined.user), role, .integer(event.position), .integer(at)])
            case .memberLeft(let left):
                let leave: [SQLValue] = [.integer(stream), .text(left.user)]
                if let known {
                    guard known.contains(left.user) else { return }
                    present[stream]?.remove(left.user)
                    try session.send("DELETE FROM members WHERE stream = ? AND \"user\" = ?", leave)
                } else {
                    let deleted = try session.execute("DELETE FROM members WHERE stream = ? AND \"user\" = ?", leave)
                    guard deleted > 0 else { return }
                }
                try session.send(
                    """
                    UPDATE membership_intervals SET left_position = ?, left_at = ?
                    WHERE stream = ? AND "user" = ? AND left_position IS NULL
                    """, [.integer(event.position), .integer(at)] + leave)
            default:
                return
            }
        }
    }
}
