import Foundation
import GRDB
import Synchronization

/// What to erase (issue 17).
public enum ErasureScope: Sendable, Equatable {
    /// Everything a person wrote, in every ticket.
    case subject(String)
    /// Everything written in a ticket.
    case ticket(StreamID)
    /// Everything written in the months before the month of this time (retention; rounded down
    /// to a month boundary, UTC).
    case before(Timestamp)
}

/// What an erasure did.
public struct ErasureReport: Sendable, Equatable {
    /// The content keys destroyed.
    public var keys: [String]
    /// Where the `erasure.performed` event is.
    public var position: Int64
    /// Whether the file could be scrubbed right away (WAL checkpointed and truncated, file
    /// vacuumed); `false` when readers held the WAL: it is scrubbed at their next checkpoint.
    public var scrubbed: Bool
}

extension EventStore {
    /// Erases personal content: destroys the content keys of `scope` and records
    /// `erasure.performed` (in ``StreamID/erasures``) in one transaction, then scrubs the file
    /// (WAL checkpointed and truncated, `VACUUM` with `secure_delete` on) so no copy of a
    /// destroyed key remains in it. From then on every read shows the content sealed with those
    /// keys as erased; the chain, the Merkle tree and every checkpoint and proof are untouched.
    ///
    /// - Parameters:
    ///   - scope: whose content, which ticket's, or which months'.
    ///   - requestedBy: who asked (a person, a policy).
    ///   - reason: why, in words (kept in the log).
    ///   - actor: who performs it.
    /// - Throws: ``EventStoreError/Code/rejected`` on a log that stores plaintext (opened
    ///   without a master key) or for an empty reason; ``EventStoreError/Code/storageFailure``
    ///   when SQLite fails (then nothing was erased).
    public func erase(_ scope: ErasureScope, requestedBy: String, reason: String, by actor: Actor) async throws
        -> ErasureReport
    {
        guard let keyring else {
            throw EventStoreError(
                code: .rejected,
                message:
                    "\(path) is not opened with a master key: its content is stored in plaintext (or cannot be opened here), so there are no keys to destroy"
            )
        }
        for (name, text) in [("the reason", reason), ("who asked", requestedBy)] {
            if let problem = TextRule.problem(text, name, limit: 1_000) {
                throw EventStoreError(code: .rejected, message: "an erasure's \(problem)")
            }
        }
        if let sealedFrom = sealedFromPosition, sealedFrom > 1 {
            let plaintext = try await read { db in try Self.plaintextEvents(scope, before: sealedFrom, db) }
            guard plaintext == 0 else {
                throw EventStoreError(
                    code: .rejected,
                    message:
                        "\(plaintext) event(s) to erase were written before encryption was turned on (position \(sealedFrom)): the chain commits to their content in plaintext, so destroying keys cannot erase it. Nothing was erased"
                )
            }
        }
        let (condition, argument, matches, payload) = Self.erasureSelection(
            scope, requestedBy: requestedBy, reason: reason)
        let clock = configuration.clock
        let erased = Mutex<[String]>([])
        let request = PreparedAppend(
            stream: .erasures, expectedVersion: .any, recordedAt: clock(), events: [],
            decide: { db, _ in
                // Keys of this process not written yet are forgotten too, so their rows are
                // written without their wrapped key.
                let inMemory = keyring.erase(where: matches)
                let stored = try String.fetchAll(
                    db, sql: "SELECT id FROM content_keys WHERE wrapped IS NOT NULL AND \(condition)",
                    arguments: [argument])
                try db.execute(
                    sql:
                        "UPDATE content_keys SET wrapped = NULL, erased_at = ? WHERE wrapped IS NOT NULL AND \(condition)",
                    arguments: [clock().microsecondsSinceEpoch, argument])
                let keys = Array(Set(inMemory + stored)).sorted()
                erased.withLock { $0 = keys }
                var erasure = payload
                erasure.keys = keys
                return [ProposedEvent(actor: actor, payload: .erasurePerformed(erasure))]
            })
        let result = try await committer.submit(request, weight: 1)
        let scrubbed = try await scrub()
        logger.notice(
            "Erased content",
            metadata: ["ticketlog.keys": "\(erased.withLock { $0.count })", "ticketlog.reason": "\(reason)"])
        return ErasureReport(keys: erased.withLock { $0 }, position: result.positions.upperBound, scrubbed: scrubbed)
    }

    /// The SQL condition on `content_keys`, its argument, the same as a predicate on scopes, and
    /// the event's payload (without its keys) for an erasure of `scope`.
    private static func erasureSelection(_ scope: ErasureScope, requestedBy: String, reason: String) -> (
        String, String, @Sendable (ContentKeyScope) -> Bool, ErasurePerformed
    ) {
        switch scope {
        case .subject(let subject):
            return (
                "subject = ?", subject, { $0.subject == subject },
                ErasurePerformed(subject: subject, requestedBy: requestedBy, reason: reason, keys: [])
            )
        case .ticket(let stream):
            let name = stream.rawValue
            return (
                "stream = ?", name, { $0.stream == name },
                ErasurePerformed(ticket: name, requestedBy: requestedBy, reason: reason, keys: [])
            )
        case .before(let time):
            let month = ContentKeyScope(subject: "", stream: .erasures, time: time).period
            return (
                "period < ?", month, { $0.period < month },
                ErasurePerformed(before: month, requestedBy: requestedBy, reason: reason, keys: [])
            )
        }
    }

    /// How many events of `scope` with personal content are before `position` (written in
    /// plaintext, before the log was encrypted).
    private static func plaintextEvents(_ scope: ErasureScope, before position: Int64, _ db: Database) throws -> Int {
        let personal = [EventType.messagePosted, .messageEdited, .statusChanged, .deliverablePushed].map {
            "'\($0.rawValue)'"
        }
        var sql = """
            SELECT count(*) FROM events e
            WHERE e.position < ? AND e.type IN (SELECT key FROM event_types WHERE name IN (\(personal.joined(separator: ","))))
            """
        var arguments: StatementArguments = [position]
        switch scope {
        case .subject(let subject):
            sql += " AND e.actor IN (SELECT key FROM actors WHERE id = ?)"
            arguments += [subject]
        case .ticket(let stream):
            sql += " AND e.stream = (SELECT key FROM streams WHERE name = ?)"
            arguments += [stream.rawValue]
        case .before(let time):
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let date = Date(timeIntervalSince1970: Double(time.microsecondsSinceEpoch) / 1_000_000)
            let month = calendar.date(from: calendar.dateComponents([.year, .month], from: date))!
            sql += " AND e.occurred_at < ?"
            arguments += [Int64(month.timeIntervalSince1970) * 1_000_000]
        }
        return try Int.fetchOne(db, sql: sql, arguments: arguments) ?? 0
    }

    /// Checkpoints and truncates the WAL, vacuums the file (with `secure_delete` on, freed pages
    /// are zeroed) and truncates again: no image of a destroyed key is left in the file, its
    /// WAL or its free pages. `false` when readers kept the WAL from being truncated.
    func scrub() async throws -> Bool {
        guard path != ":memory:" else { return true }
        return try await writer.writeWithoutTransaction { db in
            func truncate() throws -> Bool {
                let row = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                return (row?[0] as Int?) == 0
            }
            let first = try truncate()
            try db.execute(sql: "VACUUM")
            return try truncate() && first
        }
    }
}
