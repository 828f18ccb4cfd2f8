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
    /// vacuumed); `false` when readers held the WAL: it is scrubbed at their next checkpoint. On
    /// PostgreSQL, whether the key table and search index were vacuumed and the index rebuilt
    /// (`false`: the maintenance failed and was logged; the erasure itself is committed).
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
        for (name, text) in [("the reason", reason), ("who asked", requestedBy), ("who performs it", actor.id)] {
            if let problem = TextRule.problem(text, name, limit: 1_000) {
                throw EventStoreError(code: .rejected, message: "an erasure's \(problem)")
            }
        }
        if let sealedFrom = sealedFromPosition, sealedFrom > 1 {
            let plaintext = try await readSession { session in
                try Self.plaintextEvents(scope, before: sealedFrom, session)
            }
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
        let searchCandidates = try Self.searchCandidates(scope)
        let clock = configuration.clock
        let erased = Mutex<[String]>([])
        let request = PreparedAppend(
            stream: .erasures, expectedVersion: .any, recordedAt: clock(), events: [],
            decide: { session, _ in
                // The search index forgets the texts while their keys still open them.
                let doomed = try session.rows(
                    "SELECT id FROM content_keys WHERE wrapped IS NOT NULL AND \(condition)", [.text(argument)]
                ).compactMap { $0[0].text }
                try self.forgetSearchTexts(
                    sealedWith: Set(doomed + keyring.ids(where: matches)), candidates: searchCandidates, session)
                // Keys of this process not written yet are forgotten too, so their rows are
                // written without their wrapped key.
                let inMemory = keyring.erase(where: matches)
                try session.execute(
                    "UPDATE content_keys SET wrapped = NULL, erased_at = ? WHERE wrapped IS NOT NULL AND \(condition)",
                    [.integer(clock().microsecondsSinceEpoch), .text(argument)])
                let keys = Array(Set(inMemory + doomed)).sorted()
                erased.withLock { $0 = keys }
                var erasure = payload
                erasure.keys = keys
                return [ProposedEvent(actor: actor, payload: .erasurePerformed(erasure))]
            })
        let result = try await committer.submit(.prepared(request), weight: 1)
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
            let month = ContentKeyScope.month(of: time)
            return (
                "period < ?", month, { $0.period < month },
                ErasurePerformed(before: month, requestedBy: requestedBy, reason: reason, keys: [])
            )
        }
    }

    /// The events whose texts an erasure of `scope` can concern, as a condition on `e` (for
    /// ``forgetSearchTexts(sealedWith:candidates:_:)``).
    private static func searchCandidates(_ scope: ErasureScope) throws -> (
        condition: String, arguments: [SQLValue]
    ) {
        switch scope {
        case .subject(let subject):
            return ("e.actor IN (SELECT key FROM actors WHERE id = ?)", [.text(subject)])
        case .ticket(let stream):
            return ("e.stream = (SELECT key FROM streams WHERE name = ?)", [.text(stream.rawValue)])
        case .before(let time):
            let month = ContentKeyScope.month(of: time)
            guard let start = ContentKeyScope.start(ofPeriod: month) else {
                throw EventStoreError(
                    code: .rejected, message: "a retention cut needs a date of years 1000 to 9999, not \(month)")
            }
            return ("e.occurred_at < ?", [.integer(start.microsecondsSinceEpoch)])
        }
    }

    /// How many events of `scope` with personal content are before `position` (written in
    /// plaintext, before the log was encrypted).
    private static func plaintextEvents(_ scope: ErasureScope, before position: Int64, _ session: any SQLSession)
        throws -> Int
    {
        let personal = [EventType.messagePosted, .messageEdited, .statusChanged, .deliverablePushed].map {
            "'\($0.rawValue)'"
        }
        var sql = """
            SELECT count(*) FROM events e
            WHERE e.position < ? AND e.type IN (SELECT key FROM event_types WHERE name IN (\(personal.joined(separator: ","))))
            """
        var arguments: [SQLValue] = [.integer(position)]
        switch scope {
        case .subject(let subject):
            sql += " AND e.actor IN (SELECT key FROM actors WHERE id = ?)"
            arguments.append(.text(subject))
        case .ticket(let stream):
            sql += " AND e.stream = (SELECT key FROM streams WHERE name = ?)"
            arguments.append(.text(stream.rawValue))
        case .before(let time):
            // Content keys are per month: the cut is the start of `time`'s month.
            let month = ContentKeyScope.month(of: time)
            guard let start = ContentKeyScope.start(ofPeriod: month) else {
                throw EventStoreError(
                    code: .rejected, message: "a retention cut needs a date of years 1000 to 9999, not \(month)")
            }
            sql += " AND e.occurred_at < ?"
            arguments.append(.integer(start.microsecondsSinceEpoch))
        }
        return Int(try session.value(sql, arguments).integer ?? 0)
    }

    /// Checkpoints and truncates the WAL, vacuums the file (with `secure_delete` on, freed pages
    /// are zeroed) and truncates again: no image of a destroyed key is left in the file, its
    /// WAL or its free pages. `false` when readers kept the WAL from being truncated.
    func scrub() async throws -> Bool {
        if let shared { return await scrub(shared) }
        guard path != ":memory:" else { return true }
        return try await writer.writeWithoutTransaction { [checkpointer] db in try Self.scrub(db, checkpointer) }
    }

    /// PostgreSQL has no `secure_delete`: the key table and the search index are vacuumed (the
    /// dead rows holding destroyed keys and forgotten documents become free space) and the
    /// index rebuilt without blocking writers (a GIN index keeps a word's entry once its
    /// documents are gone). What PostgreSQL keeps beyond that — free space not yet overwritten,
    /// WAL segments, replicas and backups — holds only keys wrapped under the master key: rotate
    /// it after an erasure (ARCHITECTURE.md, "Erasure on PostgreSQL"). `false` when the
    /// maintenance failed (logged; the erasure itself is committed).
    private func scrub(_ shared: SharedStorage) async -> Bool {
        do {
            try await shared.database.maintain([
                "VACUUM content_keys", "VACUUM \(MessageSearchIndex.table)",
                "REINDEX INDEX CONCURRENTLY \(MessageSearchIndex.table)_documents",
            ])
            return true
        } catch {
            logger.error(
                "Vacuuming after an erasure failed; run VACUUM content_keys, VACUUM message_search and REINDEX INDEX CONCURRENTLY message_search_documents",
                metadata: ["ticketlog.error": "\(error)"])
            return false
        }
    }

    /// ``scrub()`` on a connection of its own; `checkpointer`, the one checkpointing its WAL
    /// in the background, if any.
    static func scrub(_ db: Database, _ checkpointer: WALCheckpointer? = nil) throws -> Bool {
        func truncate() throws -> Bool {
            func checkpoint() throws -> Row? { try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
            // Not beside a background checkpoint, which would keep TRUNCATE from truncating.
            let row = try checkpointer?.exclusively(checkpoint) ?? checkpoint()
            return (row?[0] as Int?) == 0
        }
        // Forgotten texts' terms out of the search index's segments, then out of free pages.
        try MessageSearchIndex.optimize(db)
        let first = try truncate()
        try db.execute(sql: "VACUUM")
        return try truncate() && first
    }
}

extension EventStore {
    /// Destroys, in this log, every content key the `erasure.performed` events of `source` name
    /// (issue 17): for a backup restored after erasures were made in the live log `source`.
    /// Records one `erasure.performed` listing the keys it destroyed here, then scrubs the file.
    ///
    /// - Parameters:
    ///   - source: the log whose erasures to apply (opened read-only is enough).
    ///   - actor: who performs it.
    /// - Returns: the report (no event is appended when no key was left to destroy).
    public func replayErasures(from source: EventStore, by actor: Actor) async throws -> ErasureReport {
        guard let keyring else {
            throw EventStoreError(
                code: .rejected,
                message:
                    "\(path) is not opened with a master key: its content is stored in plaintext (or cannot be opened here)"
            )
        }
        let erasures = try await source.readStream(.erasures).compactMap { event -> ErasurePerformed? in
            if case .erasurePerformed(let erasure) = event.payload { return erasure }
            return nil
        }
        let named = Set(erasures.flatMap(\.keys))
        guard !named.isEmpty else { return ErasureReport(keys: [], position: try await headPosition(), scrubbed: true) }
        let clock = configuration.clock
        let erased = Mutex<[String]>([])
        let request = PreparedAppend(
            stream: .erasures, expectedVersion: .any, recordedAt: clock(), events: [],
            decide: { session, version in
                let live = try session.rows("SELECT id FROM content_keys WHERE wrapped IS NOT NULL", [])
                    .compactMap { $0[0].text }.filter(named.contains)
                guard !live.isEmpty else { throw DecidedNothing(version: version) }
                try self.forgetSearchTexts(sealedWith: Set(live), candidates: nil, session)
                let now = clock().microsecondsSinceEpoch
                for id in live {
                    try session.execute(
                        "UPDATE content_keys SET wrapped = NULL, erased_at = ? WHERE id = ?",
                        [.integer(now), .text(id)])
                }
                keyring.forget(Set(live))
                erased.withLock { $0 = live.sorted() }
                return [
                    ProposedEvent(
                        actor: actor,
                        payload: .erasurePerformed(
                            ErasurePerformed(
                                requestedBy: "the erasures of \(source.path)",
                                reason: "replayed on a restored copy: \(erasures.count) erasure(s) of the live log",
                                keys: live.sorted())))
                ]
            })
        do {
            let result = try await committer.submit(.prepared(request), weight: 1)
            return ErasureReport(
                keys: erased.withLock { $0 }, position: result.positions.upperBound, scrubbed: try await scrub())
        } catch is DecidedNothing {
            return ErasureReport(keys: [], position: try await headPosition(), scrubbed: true)
        }
    }

    /// Re-wraps every live content key of the log at `path` from `old` to `new` and records the
    /// new key's fingerprint, in one transaction; then scrubs the file. No event changes. Run
    /// it with no other process using the log; open it with `new` afterwards.
    ///
    /// - Parameters:
    ///   - path: the log file.
    ///   - old: the master key the log is encrypted with.
    ///   - new: the master key to encrypt it with from now on.
    /// - Returns: how many keys were re-wrapped.
    public static func rotateMasterKey(path: String, from old: MasterKey, to new: MasterKey) throws -> Int {
        let queue = try LogMigration.openQueue(path)
        let count = try queue.write { db -> Int in
            try Schema.check(db, path: path)
            return try rotateMasterKey(SQLiteSession(db), name: path, from: old, to: new)
        }
        _ = try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            return try scrub(db)
        }
        return count
    }

    /// Re-wraps every live content key from `old` to `new` and records `new`'s fingerprint, in
    /// the session's transaction, on either backend. Returns how many keys were re-wrapped.
    /// Under the head lock: on PostgreSQL a node's write either comes before the rotation or
    /// sees the new fingerprint and refuses to go on with the old key (``ContentKeyring/refresh(_:name:)``).
    package static func rotateMasterKey(_ session: any SQLSession, name: String, from old: MasterKey, to new: MasterKey)
        throws -> Int
    {
        try LogWriter.lockHead(session)
        let meta = LogTables(session)
        guard try !meta.meta("master_key_fingerprint").isNull else {
            throw EventStoreError(
                code: .rejected, message: "\(name) stores its content in plaintext: it has no master key to rotate")
        }
        try checkMasterKey(session, name: name, masterKey: old, forWriting: true)
        let rows = try session.rows(
            "SELECT id, subject, stream, period, wrapped FROM content_keys WHERE wrapped IS NOT NULL", [])
        for row in rows {
            guard let id = row[0].text, let subject = row[1].text, let stream = row[2].text, let period = row[3].text,
                let wrapped = row[4].blob
            else { throw EventStoreError(code: .corruptRecord, message: "a content key row of \(name) is incomplete") }
            let key: ContentKey
            do {
                key = try ContentKey.unwrap(
                    wrapped, id: id, scope: ContentKeyScope(subject: subject, stream: stream, period: period),
                    master: old)
            } catch {
                throw EventStoreError(code: .corruptRecord, message: "\(error); nothing was rotated")
            }
            try session.execute(
                "UPDATE content_keys SET wrapped = ? WHERE id = ?", [.blob(try key.wrapped(by: new)), .text(id)])
        }
        try meta.setMeta("master_key_fingerprint", .text(new.fingerprint))
        return rows.count
    }
}

/// What of an erasure's content may have been copied out of the log by a mirror: the messages it
/// covers, and the events whose system messages repeated personal content (deliverables, status
/// notes).
public struct ErasedContent: Sendable {
    public struct Message: Sendable, Equatable {
        public var stream: StreamID
        public var messageID: String
        /// Posted from Stream (its id there is its own), not mirrored out by us.
        public var bornInStream: Bool
    }

    public var messages: [Message]
    public var systemMessageEvents: [RecordedEvent]
}

extension EventStore {
    /// The messages and system-message events an erasure covers (for the Stream mirror's
    /// hard-delete).
    public func erasedContent(_ erasure: ErasurePerformed) async throws -> ErasedContent {
        let condition: String
        let argument: SQLValue
        var audit = AuditQuery(types: [.deliverablePushed, .statusChanged], limit: 1_000_000)
        if let subject = erasure.subject {
            condition = "m.author = ?"
            argument = .text(subject)
            audit.actor = subject
        } else if let ticket = erasure.ticket, let stream = StreamID(rawValue: ticket) {
            condition = "s.name = ?"
            argument = .text(ticket)
            audit.stream = stream
        } else if let before = erasure.before, let start = ContentKeyScope.start(ofPeriod: before) {
            condition = "m.posted_at < ?"
            argument = .integer(start.microsecondsSinceEpoch)
            audit.to = start
        } else {
            return ErasedContent(messages: [], systemMessageEvents: [])
        }
        let messages = try await readSession { session in
            let rows = try session.rows(
                """
                SELECT s.name, m.message_id, m.position FROM messages m JOIN streams s ON s.key = m.stream
                WHERE \(condition) ORDER BY m.position
                """, [argument])
            return try rows.map { row in
                let position = row[2].integer ?? 0
                guard let post = try self.events(session, where: "position = ?", [.integer(position)]).first else {
                    throw EventStoreError.corrupt(
                        "a projection points at position \(position), which the log does not hold",
                        position: position)
                }
                let bornInStream = if case .streamChat = post.origin { true } else { false }
                return ErasedContent.Message(
                    stream: row[0].text.flatMap(StreamID.init(rawValue:)) ?? post.stream,
                    messageID: row[1].text ?? "", bornInStream: bornInStream)
            }
        }
        let system = try await auditTrail(audit).map(\.event).filter { event in
            switch event.payload {
            case .deliverablePushed: true
            case .statusChanged(let change): change.note != nil
            default: false
            }
        }
        return ErasedContent(messages: messages, systemMessageEvents: system)
    }
}
