import GRDB

/// A request a sync destination gave up on, kept for people to look at and re-drive.
public struct DeadLetter: Hashable, Sendable {
    public var destination: String
    public var position: Int64
    public var stream: StreamID
    /// What was sent, e.g. `POST /channels/messaging/ticket-42/message`.
    public var request: String
    public var reason: String
    public var at: Timestamp

    public init(destination: String, position: Int64, stream: StreamID, request: String, reason: String, at: Timestamp)
    {
        self.destination = destination
        self.position = position
        self.stream = stream
        self.request = request
        self.reason = reason
        self.at = at
    }
}

extension EventStore {
    /// Sync state lives in the log's file: `sync_cursors(destination, position)` — how far a
    /// destination has mirrored —, `sync_dead_letters` — what it gave up on — and
    /// `sync_marks(destination, key, value)` — the newest remote time seen per thing (a message,
    /// a member), so that changes arriving late and out of order are recognised as stale.
    static func prepareSyncState(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS sync_cursors (
                    destination TEXT PRIMARY KEY NOT NULL,
                    position INTEGER NOT NULL
                ) WITHOUT ROWID, STRICT;
                CREATE TABLE IF NOT EXISTS sync_marks (
                    destination TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value INTEGER NOT NULL,
                    PRIMARY KEY (destination, key)
                ) WITHOUT ROWID, STRICT;
                CREATE TABLE IF NOT EXISTS sync_dead_letters (
                    destination TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    stream TEXT NOT NULL,
                    request TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    PRIMARY KEY (destination, position)
                ) WITHOUT ROWID, STRICT;
                """)
    }

    /// How far `destination` has mirrored the log (0: nothing yet).
    public func syncCursor(_ destination: String) async throws -> Int64 {
        try await readSession { session in
            try session.value("SELECT position FROM sync_cursors WHERE destination = ?", [.text(destination)])
                .integer ?? 0
        }
    }

    /// Records that `destination` has mirrored everything up to `position`. Never moves back.
    public func saveSyncCursor(_ destination: String, position: Int64) async throws {
        try await writeSession("could not save the sync cursor") { session in
            let larger =
                switch session.dialect {
                case .sqlite: "max(position, excluded.position)"
                case .postgres: "greatest(sync_cursors.position, excluded.position)"
                }
            try session.execute(
                """
                INSERT INTO sync_cursors(destination, position) VALUES (?, ?)
                ON CONFLICT(destination) DO UPDATE SET position = \(larger)
                """,
                [.text(destination), .integer(position)])
        }
    }

    /// Raises `destination`'s mark for `key` to `value` unless it is already above it. Returns
    /// `false` when the change is stale (something newer was seen); `true` otherwise — also for
    /// the same value again, so a repeated delivery (e.g. after a failed append) is not lost.
    public func raiseSyncMark(_ destination: String, key: String, to value: Int64) async throws -> Bool {
        try await writeSession("could not record a sync mark") { session in
            try SyncMarks.raise(destination, key: key, to: value, session)
        }
    }

    /// `destination`'s mark for `key`, if one was raised.
    public func syncMark(_ destination: String, key: String) async throws -> Int64? {
        try await readSession { session in try SyncMarks.mark(destination, key: key, session) }
    }

    public func recordDeadLetter(_ letter: DeadLetter) async throws {
        try await writeSession("could not record a dead letter") { session in
            try session.execute(
                """
                INSERT INTO sync_dead_letters(destination, position, stream, request, reason, at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(destination, position) DO UPDATE SET request = excluded.request, reason = excluded.reason, at = excluded.at
                """,
                [
                    .text(letter.destination), .integer(letter.position), .text(letter.stream.rawValue),
                    .text(letter.request), .text(letter.reason), .integer(letter.at.microsecondsSinceEpoch),
                ])
        }
    }

    /// The dead letters of `destination`, oldest position first.
    public func deadLetters(_ destination: String) async throws -> [DeadLetter] {
        try await readSession { session in
            try session.rows(
                "SELECT position, stream, request, reason, at FROM sync_dead_letters WHERE destination = ? ORDER BY position",
                [.text(destination)]
            ).map { row in
                DeadLetter(
                    destination: destination, position: row[0].integer ?? 0,
                    stream: StreamID(unchecked: row[1].text ?? ""), request: row[2].text ?? "",
                    reason: row[3].text ?? "", at: Timestamp(microsecondsSinceEpoch: row[4].integer ?? 0))
            }
        }
    }

    /// Takes a dead letter off the list (to re-drive it: send its event again, then call this).
    public func removeDeadLetter(_ destination: String, position: Int64) async throws {
        try await writeSession("could not remove a dead letter") { session in
            try session.execute(
                "DELETE FROM sync_dead_letters WHERE destination = ? AND position = ?",
                [.text(destination), .integer(position)])
        }
    }
}

/// `sync_marks` over a session of either backend.
enum SyncMarks {
    static func mark(_ destination: String, key: String, _ session: any SQLSession) throws -> Int64? {
        try session.value(
            "SELECT value FROM sync_marks WHERE destination = ? AND key = ?", [.text(destination), .text(key)]
        ).integer
    }

    /// Raises the mark to `value` unless it is beyond it already; whether it was raised.
    static func raise(_ destination: String, key: String, to value: Int64, _ session: any SQLSession) throws -> Bool {
        if let current = try mark(destination, key: key, session), current > value { return false }
        try session.execute(
            "INSERT INTO sync_marks(destination, key, value) VALUES (?, ?, ?) ON CONFLICT(destination, key) DO UPDATE SET value = excluded.value",
            [.text(destination), .text(key), .integer(value)])
        return true
    }
}
