import Foundation
import GRDB

extension EventStore {
    /// Recomputes the hash chain over the whole log and reports the first position where the
    /// file differs from what was written: an edited event, a missing one, events out of order,
    /// or one that no longer decodes.
    ///
    /// Runs on one read snapshot, so appends may continue meanwhile; it checks the log as of
    /// its start.
    ///
    /// - Parameters:
    ///   - anchor: a position and hash recorded earlier outside the file; the log must still
    ///     reach that position with that hash (``VerificationFailure/Kind/missing`` when it ends
    ///     before, ``VerificationFailure/Kind/edited`` when the chain there differs).
    ///   - progress: called every few thousand events.
    public func verify(
        anchor: ChainAnchor? = nil, progress: (@Sendable (VerificationProgress) -> Void)? = nil
    ) async throws -> VerificationReport {
        try await read { db in
            var verifier = ChainVerifier(store: self, db: db, anchor: anchor, progress: progress)
            return try verifier.run()
        }
    }
}

/// One pass of ``EventStore/verify(anchor:progress:)`` over a read snapshot.
private struct ChainVerifier {
    /// How far ahead to look for the event that belongs at a broken position.
    static let reorderWindow = 1_000
    static let progressInterval: Int64 = 10_000

    let store: EventStore
    let db: Database
    let anchor: ChainAnchor?
    let progress: (@Sendable (VerificationProgress) -> Void)?

    private var streamNames: [Int64: String] = [:]
    private var streamVersions: [Int64: Int64] = [:]

    init(store: EventStore, db: Database, anchor: ChainAnchor?, progress: (@Sendable (VerificationProgress) -> Void)?) {
        self.store = store
        self.db = db
        self.anchor = anchor
        self.progress = progress
    }

    /// The last position read and checked, for a report on a file SQLite stops reading.
    private var reached: (position: Int64, hash: [UInt8], verified: Int64) = (0, HashChain.genesis, 0)

    mutating func run() throws -> VerificationReport {
        do {
            return try scan()
        } catch let error as DatabaseError where Self.isDamage(error) {
            return VerificationReport(
                failure: VerificationFailure(
                    position: reached.position + 1, kind: .damaged,
                    detail:
                        "SQLite cannot read the log past position \(reached.position): \(error.message ?? "\(error.resultCode)")"
                        + " (SQLite error \(error.extendedResultCode.rawValue))"),
                eventsVerified: reached.verified, headPosition: reached.position, headHash: reached.hash.hexString,
                warnings: [])
        }
    }

    /// Errors that mean the file's pages are damaged, not that the query or the caller is wrong.
    static func isDamage(_ error: DatabaseError) -> Bool {
        [.SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_IOERR, .SQLITE_FORMAT, .SQLITE_RANGE].contains(error.resultCode)
    }

    private mutating func scan() throws -> VerificationReport {
        streamNames = Dictionary(
            uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, name FROM streams").map { ($0[0], $0[1]) })
        let total = try Int64.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0
        var report = VerificationReport(
            failure: nil, eventsVerified: 0, headPosition: 0, headHash: HashChain.genesis.hexString,
            warnings: try warnings())
        var previous = HashChain.genesis
        var expected: Int64 = 1
        let rows = try Row.fetchCursor(
            db, sql: "SELECT position, stream, version, id, type, codec, body, hash FROM events ORDER BY position")
        while let row = try rows.next() {
            guard let stored = StoredRow(row) else {
                report.failure = VerificationFailure(
                    position: expected, kind: .undecodable,
                    detail: "a column of the event row holds a value of the wrong type")
                return report
            }
            if let failure = try check(stored, expected: expected, previous: previous) {
                report.failure = failure
                return report
            }
            if let anchor, anchor.position == stored.position, anchor.hash != stored.hash {
                report.failure = VerificationFailure(
                    position: stored.position, kind: .edited,
                    detail:
                        "the chain at position \(stored.position) is \(stored.hash.hexString), but it was anchored as "
                        + "\(anchor.hash.hexString): the log was rewritten up to here")
                return report
            }
            previous = stored.hash
            expected = stored.position + 1
            report.eventsVerified += 1
            reached = (stored.position, stored.hash, report.eventsVerified)
            report.headPosition = stored.position
            report.headHash = stored.hash.hexString
            if report.eventsVerified % Self.progressInterval == 0 {
                progress?(VerificationProgress(eventsChecked: report.eventsVerified, totalEvents: total))
            }
        }
        progress?(VerificationProgress(eventsChecked: report.eventsVerified, totalEvents: total))
        report.failure = try checkHead(last: report.headPosition, lastHash: previous)
        if report.failure == nil, let anchor, anchor.position > report.headPosition {
            let gone =
                anchor.position == report.headPosition + 1
                ? "position \(anchor.position) is" : "positions \(report.headPosition + 1)-\(anchor.position) are"
            report.failure = VerificationFailure(
                position: report.headPosition + 1, kind: .missing,
                detail:
                    "the log ends at position \(report.headPosition), but it was anchored at position \(anchor.position): "
                    + "\(gone) gone (a -wal file deleted after a crash, or an older copy of the file, loses the commits after it)"
            )
        }
        if report.failure == nil { report.warnings += try streamVersionMismatches() }
        return report
    }

    private mutating func check(_ row: StoredRow, expected: Int64, previous: [UInt8]) throws -> VerificationFailure? {
        if row.position != expected {
            let gap =
                row.position - 1 == expected
                ? "position \(expected) is" : "positions \(expected)-\(row.position - 1) are"
            return VerificationFailure(position: expected, kind: .missing, detail: "\(gap) missing from the log")
        }
        let body: EventBody
        let canonical: [UInt8]
        do {
            canonical = try store.canonicalBody(codec: row.codec, blob: Data(row.blob), position: row.position, db: db)
            body = try EventStore.decodeBody(canonical, position: row.position)
        } catch let error as EventStoreError {
            return VerificationFailure(position: row.position, kind: .undecodable, detail: error.message)
        }
        let link = HashChain.link(previous: previous, position: row.position, version: row.version, body: canonical)
        guard link == row.hash else {
            return try explainBrokenLink(row, previous: previous)
        }
        let lastVersion = streamVersions[row.stream] ?? 0
        streamVersions[row.stream] = row.version
        if let mismatch = columnMismatch(row, body: body) {
            return VerificationFailure(position: row.position, kind: .edited, detail: mismatch)
        }
        if row.version != lastVersion + 1 {
            // The chain holds, so this was written so: a file rewritten by a buggy writer.
            return VerificationFailure(
                position: row.position, kind: row.version > lastVersion ? .missing : .reordered,
                detail: "stream \(body.stream) goes from version \(lastVersion) to \(row.version)")
        }
        return nil
    }

    /// The columns that are copies of body fields (for indexing) must agree with the body.
    private func columnMismatch(_ row: StoredRow, body: EventBody) -> String? {
        if row.id != body.id.databaseBytes {
            return "the id column does not match the event's id \(body.id.uuidString.lowercased())"
        }
        if row.type != body.type.rawValue {
            return "the type column says \(row.type) but the event is \(body.type.rawValue)"
        }
        if streamNames[row.stream] != body.stream.rawValue {
            return
                "the stream column names \(streamNames[row.stream] ?? "no stream") but the event belongs to \(body.stream)"
        }
        return nil
    }

    /// The content at `row` does not hash to its link. Either the event that belongs here sits
    /// further on (reordered), the stream lost versions (missing), or it was changed (edited).
    private func explainBrokenLink(_ row: StoredRow, previous: [UInt8]) throws -> VerificationFailure {
        let later = try Row.fetchAll(
            db,
            sql:
                "SELECT position, stream, version, id, type, codec, body, hash FROM events WHERE position > ? ORDER BY position LIMIT ?",
            arguments: [row.position, Self.reorderWindow]
        ).compactMap(StoredRow.init)
        for candidate in later {
            guard
                let canonical = try? store.canonicalBody(
                    codec: candidate.codec, blob: Data(candidate.blob), position: candidate.position, db: db)
            else { continue }
            let link = HashChain.link(
                previous: previous, position: row.position, version: candidate.version, body: canonical)
            if link == row.hash || link == candidate.hash {
                return VerificationFailure(
                    position: row.position, kind: .reordered,
                    detail: "the event stored at position \(candidate.position) belongs at position \(row.position)")
            }
        }
        let lastVersion = streamVersions[row.stream] ?? 0
        if row.version > lastVersion + 1 {
            return VerificationFailure(
                position: row.position, kind: .missing,
                detail:
                    "stream \(streamNames[row.stream] ?? "#\(row.stream)") jumps from version \(lastVersion) to \(row.version) and the chain breaks here"
            )
        }
        return VerificationFailure(
            position: row.position, kind: .edited, detail: "the event's content does not match its chain hash")
    }

    /// The meta head records the newest commit: a log that ends before it lost its newest events.
    private func checkHead(last: Int64, lastHash: [UInt8]) throws -> VerificationFailure? {
        guard let headPosition = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'head_position'")
        else {
            return nil
        }
        if headPosition > last {
            let missing =
                headPosition == last + 1 ? "position \(headPosition) is" : "positions \(last + 1)-\(headPosition) are"
            return VerificationFailure(
                position: last + 1, kind: .missing,
                detail:
                    "the log ends at position \(last) but its head records position \(headPosition): \(missing) gone")
        }
        if headPosition == last,
            let headHash = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'head_hash'"),
            Array(headHash) != lastHash
        {
            return VerificationFailure(
                position: last, kind: .edited,
                detail: "the chain hash at the head differs from the one recorded at commit")
        }
        return nil
    }

    /// `streams.version` is what the next append to a stream builds on; it must match the
    /// stream's last event, or appends to it fail.
    private func streamVersionMismatches() throws -> [String] {
        try Row.fetchAll(db, sql: "SELECT key, name, version FROM streams ORDER BY key").compactMap { row in
            let key: Int64 = row[0]
            let recorded: Int64 = row[2]
            let actual = streamVersions[key] ?? 0
            guard recorded != actual else { return nil }
            return "stream \(row[1] as String) records version \(recorded) but its events end at version \(actual)"
        }
    }

    private func warnings() throws -> [String] {
        let triggers = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        return Schema.immutabilityTriggers.filter { !triggers.contains($0) }.map {
            "trigger \($0) is missing: the file no longer refuses changes to events"
        }
    }
}

private struct StoredRow {
    var position: Int64
    var stream: Int64
    var version: Int64
    var id: Data
    var type: String
    var codec: Int64
    var blob: Data
    var hash: [UInt8]

    /// `nil` when a column is NULL or of the wrong type (possible only in a tampered file:
    /// the tables are STRICT and NOT NULL).
    init?(_ row: Row) {
        // `fromDatabaseValue` returns nil on a mismatch where a Row subscript would trap.
        guard let position = Int64.fromDatabaseValue(row[0]), let stream = Int64.fromDatabaseValue(row[1]),
            let version = Int64.fromDatabaseValue(row[2]), let id = Data.fromDatabaseValue(row[3]),
            let type = String.fromDatabaseValue(row[4]), let codec = Int64.fromDatabaseValue(row[5]),
            let blob = Data.fromDatabaseValue(row[6]), let hash = Data.fromDatabaseValue(row[7])
        else { return nil }
        self.position = position
        self.stream = stream
        self.version = version
        self.id = id
        self.type = type
        self.codec = codec
        self.blob = blob
        self.hash = Array(hash)
    }
}
