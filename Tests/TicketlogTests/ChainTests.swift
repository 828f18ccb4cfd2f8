import Foundation
import GRDB
import Synchronization
import Testing
import TicketlogPostgres

@testable import Ticketlog

/// Tampering with a closed log file the way someone with file access would, then verifying.
@Suite(.timeLimit(.minutes(3))) struct ChainTests {
    /// A log of three tickets, 14 events each (positions 1-14 are ticket 1, 15-28 ticket 2, ...).
    /// With `compressed`, a dictionary exists from the start and every body is LZ4.
    static func makeLog(compressed: Bool = false) async throws -> (TemporaryDirectory, String, [RecordedEvent]) {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.dictionaryTrainingThreshold = nil
        let store = try EventStore(path: path, configuration: configuration)
        var factory = EventFactory()
        if compressed {
            try await store.append(factory.conversation(messages: 10), to: .test(0))
            try await store.rotateDictionary()
        }
        let skip = try await store.headPosition()
        for ticket in 1...3 {
            try await store.append(factory.conversation(messages: 10), to: .test(ticket))
        }
        let events = try await store.readAll(from: skip + 1)
        return (directory, path, events)
    }

    /// The file's report; and the same file copied into PostgreSQL must give the same report
    /// there (the verifier is written once, above the storage boundary), unless PostgreSQL's
    /// constraints refuse to hold the tampered rows at all.
    static func verify(_ path: String) async throws -> VerificationReport {
        let report = try await EventStore(path: path).verify()
        try await expectTheSameReportOnPostgres(path, report)
        return report
    }

    static func expectTheSameReportOnPostgres(_ path: String, _ report: VerificationReport) async throws {
        guard !PostgresTestServer.skipped else { return }
        let store = try EventStore.readOnly(path)
        let postgres = try await EventStore.open(try await PostgresTestServer.freshDatabase())
        do {
            _ = try await postgres.copy(from: store)
        } catch let refused as EventStoreError where refused.code == .rejected {
            // A duplicate id or a broken reference: rows PostgreSQL's constraints do not let
            // anyone write, so there is no such log to verify there.
            await postgres.close()
            return
        }
        let there = try await postgres.verify()
        await postgres.close()
        #expect(there.failure == report.failure, "PostgreSQL: \(String(describing: there.failure))")
        #expect(there.eventsVerified == report.eventsVerified)
        #expect(there.headPosition == report.headPosition && there.headHash == report.headHash)
        // SQLite's dropped triggers are not copied: PostgreSQL's own are in place.
        #expect(there.warnings == report.warnings.filter { !$0.hasPrefix("trigger ") })
    }

    static let dropTriggers = "DROP TRIGGER events_are_immutable_update; DROP TRIGGER events_are_immutable_delete;"

    @Test func anUntouchedLogVerifies() async throws {
        let (directory, path, events) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        let report = try await Self.verify(path)
        #expect(report.isValid)
        #expect(report.eventsVerified == Int64(events.count))
        #expect(report.headPosition == events.last?.position)
        #expect(report.warnings.isEmpty)
    }

    @Test func anEditedPayloadIsFound() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(
            path,
            Self.dropTriggers + """
                UPDATE events SET body = CAST(replace(CAST(body AS TEXT), 'Friday', 'Monday') AS BLOB) WHERE position = 20;
                """)
        #expect(
            try sqlite3(path, "SELECT instr(CAST(body AS TEXT), 'Monday') > 0 FROM events WHERE position = 20") == "1\n"
        )
        let report = try await Self.verify(path)
        #expect(report.failure?.position == 20)
        #expect(report.failure?.kind == .edited)
        #expect(report.eventsVerified == 19)
        #expect(report.warnings.count == 2)
    }

    @Test func anEditedCompressedEventIsFound() async throws {
        let (directory, path, events) = try await Self.makeLog(compressed: true)
        defer { withExtendedLifetime(directory) {} }
        let target = events[5]
        #expect(try sqlite3(path, "SELECT codec FROM events WHERE position = \(target.position)") == "1\n")
        // Swap in a well-formed, uncompressed body that says something else.
        var forged = target.proposed
        forged.payload = .messagePosted(MessagePosted(messageID: "m-forged", text: "We never agreed to Friday."))
        let body = try CanonicalJSON.encode(EventBody(forged, stream: target.stream, recordedAt: target.recordedAt))
        let hex = try #require(StoredBody.strip(body)).hexString
        try sqlite3(
            path,
            Self.dropTriggers + "UPDATE events SET codec = 0, body = X'\(hex)' WHERE position = \(target.position);")
        let report = try await Self.verify(path)
        #expect(report.failure?.position == target.position)
        #expect(report.failure?.kind == .edited)
    }

    /// The columns are part of the event (the canonical JSON is spliced from them): changing one
    /// breaks the chain like an edited body.
    @Test(arguments: [
        "type = (SELECT type FROM events WHERE position = 1)", "occurred_at = occurred_at + 1",
        "id = (SELECT id FROM events WHERE position = 1)",
    ])
    func anEditedColumnIsFound(_ assignment: String) async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(
            path, Self.dropTriggers + "DROP INDEX events_by_id; UPDATE events SET \(assignment) WHERE position = 9;")
        let report = try await Self.verify(path)
        #expect(report.failure?.position == 9)
        #expect(report.failure?.kind == .edited)
        #expect(report.failure?.detail.contains("does not match its chain hash") == true)
    }

    @Test func aDeletedEventIsFound() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(path, Self.dropTriggers + "DELETE FROM events WHERE position = 17;")
        let report = try await Self.verify(path)
        #expect(report.failure?.position == 17)
        #expect(report.failure?.kind == .missing)
        #expect(report.eventsVerified == 16)
    }

    @Test func deletedEventsWithPositionsRenumberedAreFound() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        // Remove event 17 and close the gap, as a careful forger would.
        try sqlite3(
            path,
            Self.dropTriggers + """
                DELETE FROM events WHERE position = 17;
                CREATE TEMP TABLE later AS SELECT * FROM events WHERE position > 17;
                DELETE FROM events WHERE position > 17;
                INSERT INTO events SELECT position - 1, stream, version, id, type, actor, occurred_at, recorded_at, codec, body, chain_check FROM later ORDER BY position;
                UPDATE meta SET value = value - 1 WHERE key = 'head_position';
                """)
        let report = try await Self.verify(path)
        #expect(report.failure?.position == 17)
        #expect(report.failure?.kind == .missing)
    }

    @Test func theNewestEventsRemovedAreFound() async throws {
        let (directory, path, events) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        let last = try #require(events.last?.position)
        try sqlite3(path, Self.dropTriggers + "DELETE FROM events WHERE position > \(last - 2);")
        let report = try await Self.verify(path)
        #expect(report.failure?.position == last - 1)
        #expect(report.failure?.kind == .missing)
        #expect(report.failure?.detail.contains("head records position \(last)") == true)
    }

    @Test func swappedEventsAreFound() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        // Swap two whole rows (every column but the position), across two tickets.
        try sqlite3(
            path,
            Self.dropTriggers + """
                CREATE TEMP TABLE pair AS SELECT * FROM events WHERE position IN (12, 20);
                DELETE FROM events WHERE position IN (12, 20);
                INSERT INTO events SELECT CASE position WHEN 12 THEN 20 ELSE 12 END, stream, version, id, type, actor, occurred_at, recorded_at, codec, body, chain_check FROM pair;
                """)
        let report = try await Self.verify(path)
        #expect(report.failure?.position == 12)
        #expect(report.failure?.kind == .reordered)
        #expect(report.failure?.detail.contains("stored at position 20 belongs at position 12") == true)
    }

    @Test func swappedContentUnderKeptHashesIsFound() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        // Swap neighbours' content but leave each row's hash where it was.
        try sqlite3(
            path,
            Self.dropTriggers + """
                CREATE TEMP TABLE pair AS SELECT * FROM events WHERE position IN (5, 6);
                DELETE FROM events WHERE position IN (5, 6);
                INSERT INTO events
                  SELECT p.position, q.stream, q.version, q.id, q.type, q.actor, q.occurred_at, q.recorded_at, q.codec, q.body,
                    p.chain_check
                  FROM pair p JOIN pair q ON q.position = CASE p.position WHEN 5 THEN 6 ELSE 5 END;
                """)
        let report = try await Self.verify(path)
        #expect(report.failure?.position == 5)
        #expect(report.failure?.kind == .reordered)
    }

    @Test func aDamagedBodyIsUndecodable() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(path, Self.dropTriggers + "UPDATE events SET body = X'7b226e6f74206a736f6e' WHERE position = 3;")
        let report = try await Self.verify(path)
        #expect(report.failure?.position == 3)
        #expect(report.failure?.kind == .undecodable)
        let error = await #expect(throws: EventStoreError.self) { try await EventStore(path: path).readAll() }
        #expect(error?.code == .corruptRecord)
    }

    /// The table is `STRICT`; one whose schema was rewritten to let a column hold another type
    /// (here the body as text) is read as an undecodable row, not trusted or skipped.
    @Test func aColumnOfAnotherTypeIsUndecodable() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(
            path,
            """
            PRAGMA writable_schema = ON;
            UPDATE sqlite_schema SET sql = replace(sql, ') STRICT', ')') WHERE name = 'events';
            """)
        try sqlite3(path, Self.dropTriggers + "UPDATE events SET body = 'not a blob' WHERE position = 4;")
        #expect(try sqlite3(path, "SELECT typeof(body) FROM events WHERE position = 4;").contains("text"))
        // Not copied into PostgreSQL (``verify(_:)``): its typed columns cannot hold such a row.
        let report = try await EventStore(path: path).verify()
        #expect(report.failure?.position == 4)
        #expect(report.failure?.kind == .undecodable)
        #expect(report.failure?.detail.contains("wrong type") == true, "\(String(describing: report.failure))")
        let store = try EventStore(path: path)
        let error = await #expect(throws: EventStoreError.self) { try await store.readAll() }
        #expect(error?.code == .corruptRecord)
        #expect(error?.position == 4)
        // The rebuild reads the rows through SQLite's C API, column by column: the same refusal.
        let rebuilt = await #expect(throws: EventStoreError.self) { try await store.rebuildProjections() }
        #expect(rebuilt?.code == .corruptRecord)
        #expect(rebuilt?.position == 4)
    }

    @Test func aStreamVersionOutOfStepWithItsEventsIsReported() async throws {
        let (directory, path, _) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(path, "UPDATE streams SET version = 3 WHERE name = 'ticket-2';")
        let report = try await Self.verify(path)
        #expect(report.isValid, "the events themselves are intact")
        #expect(report.warnings == ["stream ticket-2 records version 3 but its events end at version 14"])
    }

    /// Pages of 256 rows and more are decoded on two threads (a helper takes the tail of each
    /// page while the chain is followed through its head): a log of two pages (2,000 and 1,000
    /// rows), tampered in the head or the tail of either, reports what the same pages decoded on
    /// one thread report: the first failure, with the events before it counted.
    @Test(
        arguments: [
            ("", nil),
            (
                "UPDATE events SET occurred_at = occurred_at + 1 WHERE position = 1500;",
                (1_500, VerificationFailure.Kind.edited)
            ),
            ("UPDATE events SET body = X'7b226e6f74206a736f6e' WHERE position IN (400, 1500);", (400, .undecodable)),
            ("UPDATE events SET body = X'7b226e6f74206a736f6e' WHERE position = 2900;", (2_900, .undecodable)),
            ("DELETE FROM events WHERE position = 1700;", (1_700, .missing)),
            (
                "UPDATE events SET type = (SELECT type FROM events WHERE position = 1) WHERE position = 2100;",
                (2_100, .edited)
            ),
        ] as [(String, (Int64, VerificationFailure.Kind)?)])
    func pagesDecodedOnTwoThreadsReportWhatOneThreadReports(
        _ tampering: String, _ expected: (position: Int64, kind: VerificationFailure.Kind)?
    ) async throws {
        let (directory, path) = try await Self.makeLargeLog(tickets: 3)
        defer { withExtendedLifetime(directory) {} }
        if !tampering.isEmpty { try sqlite3(path, Self.dropTriggers + tampering) }
        let report = try await Self.verifiedOnOneThreadAndTwo(path)
        if let expected {
            #expect(report.failure?.position == expected.position)
            #expect(report.failure?.kind == expected.kind)
            #expect(report.eventsVerified == expected.position - 1)
        } else {
            #expect(report.isValid)
            #expect(report.eventsVerified == 3_000)
        }
        try await Self.expectTheSameReportOnPostgres(path, report)
    }

    /// Verify reads a page ahead of the chain: a page of the file SQLite cannot read (here a
    /// leaf of `events` holding rows of the third page of 2,000, zeroed) is still reported where
    /// the chain reaches it — the first position of the rows read with it — not where the
    /// chain was when it was read.
    @Test func anUnreadablePageIsReportedWhereTheChainReachesIt() async throws {
        let (directory, path) = try await Self.makeLargeLog(tickets: 5)
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(path, "PRAGMA wal_checkpoint(TRUNCATE);")
        let leaves = try sqlite3(
            path, "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf' ORDER BY path;"
        ).split(separator: "\n").compactMap { Int($0) }
        let pageSize = try #require(Int(try sqlite3(path, "PRAGMA page_size;").filter(\.isNumber)))
        #expect(leaves.count > 100)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64((leaves[leaves.count * 9 / 10] - 1) * pageSize))
        try handle.write(contentsOf: Data(count: pageSize))
        try handle.close()
        let report = try await Self.verifiedOnOneThreadAndTwo(path)
        #expect(report.failure?.kind == .damaged)
        #expect(report.failure?.position == 4_001)
        #expect(report.eventsVerified == 4_000)
    }

    /// A log of `tickets` conversations of 1,000 events each (ticket 1 at positions 1-1000,
    /// ticket 2 at 1001-2000, ...), closed; bodies compressed once the dictionary is trained.
    static func makeLargeLog(tickets: Int) async throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        let store = try EventStore(path: path, configuration: configuration)
        var factory = EventFactory()
        for ticket in 1...tickets { try await store.append(factory.conversation(messages: 996), to: .test(ticket)) }
        #expect(try await store.headPosition() == Int64(tickets) * 1_000)
        await store.close()
        return (directory, path)
    }

    /// The report of `verify` on `path` with pages decoded on two threads, expected to equal
    /// the report with every page decoded on the verifying thread alone.
    static func verifiedOnOneThreadAndTwo(_ path: String) async throws -> VerificationReport {
        let store = try EventStore(path: path)
        let (parallel, serial) = try await store.readSession { session in
            (
                try LogVerifier.verify(session, anchor: nil, parallel: true, progress: nil),
                try LogVerifier.verify(session, anchor: nil, parallel: false, progress: nil)
            )
        }
        await store.close()
        #expect(parallel.failure == serial.failure)
        #expect(parallel.eventsVerified == serial.eventsVerified && parallel.headPosition == serial.headPosition)
        #expect(parallel.headHash == serial.headHash && parallel.warnings == serial.warnings)
        return parallel
    }

    @Test func verifyReportsProgress() async throws {
        let (directory, path, events) = try await Self.makeLog()
        defer { withExtendedLifetime(directory) {} }
        let store = try EventStore(path: path)
        let updates = ProgressLog()
        _ = try await store.verify { updates.append($0) }
        let last = try #require(updates.all.last)
        #expect(last.eventsChecked == Int64(events.count))
        #expect(last.totalEvents == Int64(events.count))
    }
}

final class ProgressLog: Sendable {
    private let updates = Mutex<[VerificationProgress]>([])
    func append(_ update: VerificationProgress) { updates.withLock { $0.append(update) } }
    var all: [VerificationProgress] { updates.withLock { $0 } }
}
