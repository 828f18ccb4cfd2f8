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
    /// Checks the log a session reads (one snapshot: the caller's transaction). With
    /// `parallel` (the default), pages of events are decoded on two threads.
    package static func verify(
        _ session: any SQLSession, anchor: ChainAnchor?, parallel: Bool = true,
        progress: (@Sendable (VerificationProgress) -> Void)?
    ) throws -> VerificationReport {
        var verifier = ChainVerifier(
            tables: LogTables(session), anchor: anchor, parallelPage: parallel ? ChainVerifier.parallelPage : .max,
            progress: progress)
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
    /// Pages of fewer rows are prepared on the calling thread alone (a small log's `verify`
    /// starts no thread).
    static let parallelPage = 256

    let tables: LogTables
    let anchor: ChainAnchor?
    /// The smallest page prepared on two threads.
    let parallelPage: Int
    let progress: (@Sendable (VerificationProgress) -> Void)?

    private var vocabulary = LogVocabulary()
    /// Built once the vocabulary and the dictionaries are read.
    private var preparer = RowPreparer(vocabulary: LogVocabulary(), dictionaries: [:])
    private var streamVersions: [Int64: Int64] = [:]

    init(
        tables: LogTables, anchor: ChainAnchor?, parallelPage: Int,
        progress: (@Sendable (VerificationProgress) -> Void)?
    ) {
        self.tables = tables
        self.anchor = anchor
        self.parallelPage = parallelPage
        self.progress = progress
    }

    /// The last position read and checked, for a report on a file SQLite stops reading.
    private var reached: (position: Int64, hash: [UInt8], verified: Int64) = (0, HashChain.genesis, 0)
    private var total: Int64 = 0

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
        preparer = RowPreparer(vocabulary: vocabulary, dictionaries: try tables.dictionaries())
        let preparer = preparer  // a copy the helper's job can capture (it cannot capture `self`)
        total = try tables.eventCount()
        var report = VerificationReport(
            failure: nil, eventsVerified: 0, headPosition: 0, headHash: HashChain.genesis.hexString,
            warnings: try warnings())
        // Two cores, as a pipeline: while this thread follows the chain through a page (one
        // hash after another), reads the page after the next and prepares the head of the
        // next, the helper prepares the rest of the next page. `share` sizes that head so that
        // both finish together.
        var helper: HelperThread?
        defer { helper?.stop() }
        var share = HelperShare()
        var page = try tables.events(after: 0, limit: Self.pageSize)
        var prepared = preparer.prepare(page[...])
        var (next, nextUnread) = readAhead(after: page)
        while !page.isEmpty {
            var (afterNext, afterNextUnread): ([StoredEventRow?], (any Error)?) = ([], nil)
            // A small page is prepared here whole.
            let headCount = next.count < parallelPage ? next.count : share.headCount(of: next.count)
            let head = next[..<headCount]
            let tail = next[headCount...]
            /// This thread's part: the chain through `page`, then the head of the next page and
            /// the page after it read.
            func here() throws -> (failure: VerificationFailure?, head: [PreparedRow?]) {
                if let failure = try checkChain(page[...], prepared: prepared, report: &report) { return (failure, []) }
                // Thrown once the chain reached the page it could not read, as `run` reports.
                if let nextUnread { throw nextUnread }
                let headPrepared = preparer.prepare(head)
                (afterNext, afterNextUnread) = readAhead(after: next)
                return (nil, headPrepared)
            }
            let failure: VerificationFailure?
            var nextPrepared: [PreparedRow?]
            if tail.isEmpty {
                (failure, nextPrepared) = try here()
            } else {
                let tailPrepared = HelperResult<(rows: [PreparedRow?], seconds: Double)>(([], 0))
                let shared = helper ?? HelperThread(name: "verify-helper")
                helper = shared
                let clock = ContinuousClock()
                let started = clock.now
                var hereSeconds = 0.0
                (failure, nextPrepared) = try shared.both(
                    here: {
                        defer { hereSeconds = (clock.now - started).seconds }
                        return try here()
                    },
                    there: {
                        let started = clock.now
                        let rows = preparer.prepare(tail)
                        tailPrepared.value = (rows, (clock.now - started).seconds)
                    })
                nextPrepared += tailPrepared.value.rows
                share.learn(rows: next.count, head: headCount, here: hereSeconds, there: tailPrepared.value.seconds)
            }
            if let failure {
                report.failure = failure
                return finished(report)
            }
            (page, prepared, next, nextUnread) = (next, nextPrepared, afterNext, afterNextUnread)
        }
        progress?(VerificationProgress(eventsChecked: report.eventsVerified, totalEvents: total))
        report.failure = try checkHead(last: report.headPosition, lastHash: reached.hash)
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

    /// The page of events after `page`, or why it could not be read (kept until the chain
    /// reaches it, so that a damaged page is reported where it starts); none when a row of
    /// `page` could not be read (its position unknown, the chain stops there anyway) or `page`
    /// was the last.
    private func readAhead(after page: [StoredEventRow?]) -> ([StoredEventRow?], (any Error)?) {
        guard page.count == Self.pageSize, let last = page.last ?? nil else { return ([], nil) }
        do {
            return (try tables.events(after: last.position, limit: Self.pageSize), nil)
        } catch {
            return ([], error)
        }
    }

    /// Follows the chain through `rows` (`prepared` holds what ``RowPreparer`` made of each),
    /// counting them into `report`; the first failure, if any.
    private mutating func checkChain(
        _ rows: ArraySlice<StoredEventRow?>, prepared: [PreparedRow?], report: inout VerificationReport
    ) throws -> VerificationFailure? {
        for (row, prepared) in zip(rows, prepared) {
            guard let stored = row, let prepared else {
                return VerificationFailure(
                    position: reached.position + 1, kind: .undecodable,
                    detail: "a column of the event row holds a value of the wrong type")
            }
            let link: [UInt8]
            switch try check(stored, prepared, expected: reached.position + 1, previous: reached.hash) {
            case .failure(let failure): return failure
            case .success(let hash): link = hash
            }
            if let anchor, anchor.position == stored.position, anchor.hash != link {
                return VerificationFailure(
                    position: stored.position, kind: .edited,
                    detail:
                        "the chain at position \(stored.position) is \(link.hexString), but it was anchored as "
                        + "\(anchor.hash.hexString): the log was rewritten up to here")
            }
            report.eventsVerified += 1
            reached = (stored.position, link, report.eventsVerified)
            report.headPosition = stored.position
            if report.eventsVerified % Self.progressInterval == 0 {
                progress?(VerificationProgress(eventsChecked: report.eventsVerified, totalEvents: total))
            }
        }
        return nil
    }

    /// The event's full chain hash when its row checks out, else what is wrong with it.
    private mutating func check(_ row: StoredEventRow, _ prepared: PreparedRow, expected: Int64, previous: [UInt8])
        throws -> Result<[UInt8], VerificationFailure>
    {
        if row.position != expected {
            let gap =
                row.position - 1 == expected
                ? "position \(expected) is" : "positions \(expected)-\(row.position - 1) are"
            return .failure(
                VerificationFailure(position: expected, kind: .missing, detail: "\(gap) missing from the log"))
        }
        let canonical: [UInt8]
        switch prepared.canonical {
        case .failure(let error as EventStoreError):
            return .failure(VerificationFailure(position: row.position, kind: .undecodable, detail: error.message))
        case .failure(let error): throw error
        case .success(let bytes): canonical = bytes
        }
        // The chain first: content that was changed is an edit, even when it no longer decodes
        // as its (changed) type.
        let link = HashChain.link(previous: previous, position: row.position, version: row.version, body: canonical)
        guard row.check.count == Schema.chainCheckSize,
            (0..<Schema.chainCheckSize).allSatisfy({ link[$0] == row.check[$0] })
        else {
            return .failure(try explainBrokenLink(row, previous: previous))
        }
        if let error = prepared.undecodable {
            guard let error = error as? EventStoreError else { throw error }
            return .failure(VerificationFailure(position: row.position, kind: .undecodable, detail: error.message))
        }
        let lastVersion = streamVersions[row.stream] ?? 0
        streamVersions[row.stream] = row.version
        if row.version != lastVersion + 1 {
            // The chain holds, so this was written so: a file rewritten by a buggy writer.
            return .failure(
                VerificationFailure(
                    position: row.position, kind: row.version > lastVersion ? .missing : .reordered,
                    detail:
                        "stream \(vocabulary.streams[row.stream] ?? "#\(row.stream)") goes from version \(lastVersion) to \(row.version)"
                ))
        }
        return .success(link)
    }

    /// The content at `row` does not hash to its link. Either the event that belongs here sits
    /// further on (reordered), the stream lost versions (missing), or it was changed (edited).
    private func explainBrokenLink(_ row: StoredEventRow, previous: [UInt8]) throws -> VerificationFailure {
        let later = try tables.events(after: row.position, limit: Self.reorderWindow).compactMap { $0 }
        for candidate in later {
            guard let canonical = try? preparer.parts(candidate).canonical else { continue }
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

/// What `verify` learns of an event row without the chain: its canonical body and whether it
/// decodes as its type. Rows are independent of each other here, so a page is prepared on two
/// threads.
private struct PreparedRow: Sendable {
    /// The canonical JSON, or why it cannot be built (a damaged body, a missing reference).
    var canonical: Result<[UInt8], any Error>
    /// Why the event does not decode as its type, when it does not.
    var undecodable: (any Error)?
}

/// Makes ``PreparedRow``s: decompresses, splices and decodes, reading nothing but its values.
private struct RowPreparer: Sendable {
    let vocabulary: LogVocabulary
    let dictionaries: [Int64: LZ4Dictionary]

    func prepare(_ rows: ArraySlice<StoredEventRow?>) -> [PreparedRow?] {
        rows.map { row in row.map(prepare) }
    }

    func prepare(_ row: StoredEventRow) -> PreparedRow {
        let (stored, columns, canonical): ([UInt8], EventColumns, [UInt8])
        do {
            (stored, columns, canonical) = try parts(row)
        } catch {
            return PreparedRow(canonical: .failure(error), undecodable: nil)
        }
        do {
            _ = try EventStore.decodeRecord(
                stored: stored, columns: columns, position: row.position, version: row.version)
            return PreparedRow(canonical: .success(canonical), undecodable: nil)
        } catch {
            return PreparedRow(canonical: .success(canonical), undecodable: error)
        }
    }

    /// A row's stored body (decompressed), its columns, and its canonical JSON: the stored body
    /// with the columns spliced back in.
    func parts(_ row: StoredEventRow) throws -> (stored: [UInt8], columns: EventColumns, canonical: [UInt8]) {
        let stored = try row.storedBody(dictionaries: dictionaries)
        let columns = try vocabulary.columns(of: row)
        return (stored, columns, try EventStore.canonicalBody(stored: stored, columns: columns, position: row.position))
    }
}

/// How many rows of a page `verify`'s own thread prepares while its helper prepares the rest:
/// as many as make both finish together, learnt from the page before (this thread also follows
/// the chain and reads, so its share depends on the machine and the log).
private struct HelperShare {
    /// The helper's seconds per row prepared.
    private var perRow: Double?
    /// This thread's seconds per page for its work apart from preparing.
    private var fixed = 0.0

    func headCount(of rows: Int) -> Int {
        guard let perRow, perRow > 0 else { return rows / 4 }
        let balanced = (perRow * Double(rows) - fixed) / (2 * perRow)
        return Int(min(max(balanced, 0), Double(rows)))
    }

    mutating func learn(rows: Int, head: Int, here: Double, there: Double) {
        guard rows > head, there > 0 else { return }
        let measured = there / Double(rows - head)
        let measuredFixed = max(0, here - measured * Double(head))
        if let known = perRow {
            perRow = (known + measured) / 2
            fixed = (fixed + measuredFixed) / 2
        } else {
            (perRow, fixed) = (measured, measuredFixed)
        }
    }
}
