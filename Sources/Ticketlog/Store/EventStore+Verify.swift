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
        try await readSession { session in try LogVerifier.verify(session, anchor: anchor, progress: progress) }
    }
}

/// `verify` over a read transaction of either backend: the chain, written once above the
/// storage boundary.
package enum LogVerifier {
    /// Checks the log a session reads (one snapshot: the caller's transaction).
    package static func verify(
        _ session: any SQLSession, anchor: ChainAnchor?, progress: (@Sendable (VerificationProgress) -> Void)?
    ) throws -> VerificationReport {
        var verifier = ChainVerifier(tables: LogTables(session), anchor: anchor, progress: progress)
        return try verifier.run()
    }
}

/// One pass of ``EventStore/verify(anchor:progress:)`` over a read snapshot.
private struct ChainVerifier {
    /// How far ahead to look for the event that belongs at a broken position.
    static let reorderWindow = 1_000
    static let progressInterval: Int64 = 10_000

    /// Rows read per query: the log is read in pages by position, on either backend.
    static let pageSize = 2_000

    let tables: LogTables
    let anchor: ChainAnchor?
    let progress: (@Sendable (VerificationProgress) -> Void)?

    private var vocabulary = LogVocabulary()
    private var dictionaries: [Int64: LZ4Dictionary] = [:]
    private var streamVersions: [Int64: Int64] = [:]

    init(tables: LogTables, anchor: ChainAnchor?, progress: (@Sendable (VerificationProgress) -> Void)?) {
        self.tables = tables
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

    /// `report` with the head hash of the last event checked (spelled out once, at the end:
    /// hex for every event was a fifth of the whole verify).
    private func finished(_ report: VerificationReport) -> VerificationReport {
        var report = report
        report.headHash = reached.hash.hexString
        return report
    }

    private mutating func scan() throws -> VerificationReport {
        vocabulary = try tables.vocabulary()
        dictionaries = try tables.dictionaries()
        let total = try tables.eventCount()
        var report = VerificationReport(
            failure: nil, eventsVerified: 0, headPosition: 0, headHash: HashChain.genesis.hexString,
            warnings: try warnings())
        var previous = HashChain.genesis
        var expected: Int64 = 1
        var page = try tables.events(after: 0, limit: Self.pageSize)
        while !page.isEmpty {
            for row in page {
                guard let stored = row else {
                    report.failure = VerificationFailure(
                        position: expected, kind: .undecodable,
                        detail: "a column of the event row holds a value of the wrong type")
                    return finished(report)
                }
                let link: [UInt8]
                switch try check(stored, expected: expected, previous: previous) {
                case .failure(let failure):
                    report.failure = failure
                    return finished(report)
                case .success(let hash):
                    link = hash
                }
                if let anchor, anchor.position == stored.position, anchor.hash != link {
                    report.failure = VerificationFailure(
                        position: stored.position, kind: .edited,
                        detail:
                            "the chain at position \(stored.position) is \(link.hexString), but it was anchored as "
                            + "\(anchor.hash.hexString): the log was rewritten up to here")
                    return finished(report)
                }
                previous = link
                expected = stored.position + 1
                report.eventsVerified += 1
                reached = (stored.position, link, report.eventsVerified)
                report.headPosition = stored.position
                if report.eventsVerified % Self.progressInterval == 0 {
                    progress?(VerificationProgress(eventsChecked: report.eventsVerified, totalEvents: total))
                }
            }
            page = try tables.events(after: reached.position, limit: Self.pageSize)
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
        return finished(report)
    }

    /// The event's full chain hash when its row checks out, else what is wrong with it.
    private mutating func check(_ row: StoredEventRow, expected: Int64, previous: [UInt8]) throws -> Result<
        [UInt8], VerificationFailure
    > {
        if row.position != expected {
            let gap =
                row.position - 1 == expected
                ? "position \(expected) is" : "positions \(expected)-\(row.position - 1) are"
            return .failure(
                VerificationFailure(position: expected, kind: .missing, detail: "\(gap) missing from the log"))
        }
        let body: RecordedEvent
        let link: [UInt8]
        do {
            let (stored, columns) = try parts(row)
            let canonical = try EventStore.canonicalBody(stored: stored, columns: columns, position: row.position)
            // The chain first: content that was changed is an edit, even when it no longer
            // decodes as its (changed) type.
            link = HashChain.link(previous: previous, position: row.position, version: row.version, body: canonical)
            guard row.check.count == Schema.chainCheckSize,
                (0..<Schema.chainCheckSize).allSatisfy({ link[$0] == row.check[$0] })
            else {
                return .failure(try explainBrokenLink(row, previous: previous))
            }
            body = try EventStore.decodeRecord(
                stored: stored, columns: columns, position: row.position, version: row.version)
        } catch let error as EventStoreError {
            return .failure(VerificationFailure(position: row.position, kind: .undecodable, detail: error.message))
        }
        let lastVersion = streamVersions[row.stream] ?? 0
        streamVersions[row.stream] = row.version
        if row.version != lastVersion + 1 {
            // The chain holds, so this was written so: a file rewritten by a buggy writer.
            return .failure(
                VerificationFailure(
                    position: row.position, kind: row.version > lastVersion ? .missing : .reordered,
                    detail: "stream \(body.stream) goes from version \(lastVersion) to \(row.version)"))
        }
        return .success(link)
    }

    /// A row's stored body, decompressed, and its columns.
    private func parts(_ row: StoredEventRow) throws -> (stored: [UInt8], columns: EventColumns) {
        (try row.storedBody(dictionaries: dictionaries), try vocabulary.columns(of: row))
    }

    /// The canonical JSON of a row: its stored body with its columns spliced back in.
    private func canonical(_ row: StoredEventRow) throws -> [UInt8] {
        let (stored, columns) = try parts(row)
        return try EventStore.canonicalBody(stored: stored, columns: columns, position: row.position)
    }

    /// The content at `row` does not hash to its link. Either the event that belongs here sits
    /// further on (reordered), the stream lost versions (missing), or it was changed (edited).
    private func explainBrokenLink(_ row: StoredEventRow, previous: [UInt8]) throws -> VerificationFailure {
        let later = try tables.events(after: row.position, limit: Self.reorderWindow).compactMap { $0 }
        for candidate in later {
            guard let canonical = try? self.canonical(candidate) else { continue }
            let link = HashChain.link(
                previous: previous, position: row.position, version: candidate.version, body: canonical
            ).prefix(Schema.chainCheckSize)
            if link.elementsEqual(row.check) || link.elementsEqual(candidate.check) {
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
                    "stream \(vocabulary.streams[row.stream] ?? "#\(row.stream)") jumps from version \(lastVersion) to \(row.version) and the chain breaks here"
            )
        }
        return VerificationFailure(
            position: row.position, kind: .edited, detail: "the event's content does not match its chain hash")
    }

    /// The meta head records the newest commit: a log that ends before it lost its newest events.
    private func checkHead(last: Int64, lastHash: [UInt8]) throws -> VerificationFailure? {
        guard let headPosition = try tables.meta("head_position").integer else { return nil }
        if headPosition > last {
            let missing =
                headPosition == last + 1 ? "position \(headPosition) is" : "positions \(last + 1)-\(headPosition) are"
            return VerificationFailure(
                position: last + 1, kind: .missing,
                detail:
                    "the log ends at position \(last) but its head records position \(headPosition): \(missing) gone")
        }
        if headPosition == last,
            let headHash = try tables.meta("head_hash").blob, headHash != lastHash
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
        try tables.session.rows("SELECT key, name, version FROM streams ORDER BY key", []).compactMap { row in
            guard let key = row[0].integer, let recorded = row[2].integer else { return nil }
            let actual = streamVersions[key] ?? 0
            guard recorded != actual else { return nil }
            return
                "stream \(row[1].text ?? "#\(key)") records version \(recorded) but its events end at version \(actual)"
        }
    }

    private func warnings() throws -> [String] {
        let triggers = try tables.triggerNames()
        return Schema.immutabilityTriggers.filter { !triggers.contains($0) }.map {
            "trigger \($0) is missing: the file no longer refuses changes to events"
        }
    }
}
