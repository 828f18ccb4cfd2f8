import Foundation
import GRDB
import Testing

@testable import Ticketlog
@testable import TicketlogPostgres

@Suite(.timeLimit(.minutes(3))) struct StoreFileTests {
    @Test func eventsCannotBeUpdatedOrDeletedThroughSQL() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let store = try EventStore(path: path)
        var factory = EventFactory()
        try await store.append(factory.conversation(messages: 2), to: .test(1))

        for sql in [
            "UPDATE events SET occurred_at = 0 WHERE position = 2", "DELETE FROM events WHERE position = 3",
        ] {
            let error = await #expect(throws: DatabaseError.self) {
                try await store.writer.write { db in try db.execute(sql: sql) }
            }
            #expect(error?.message?.contains("ticketlog events are immutable") == true)
            // Through the sqlite3 shell too: the triggers live in the file, not in this process.
            #expect(throws: SQLiteShellError.self) { try sqlite3(path, sql) }
        }
        #expect(try await store.verify().isValid)
        #expect(try await store.readAll().count == 6)
    }

    /// A store's configuration with small WAL checkpoint thresholds (NORMAL durability).
    static func checkpointing(_ thresholds: WALCheckpointer.Thresholds) -> EventStore.Configuration {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.walCheckpointFrames = thresholds
        return configuration
    }

    /// The WAL is checkpointed on a connection of its own while the writer goes on; the
    /// writer's commits only finish what is left once the WAL is long, so it starts over and
    /// stays bounded (SQLite's automatic checkpoint, which the hook replaces, would let it grow to
    /// 1,000 frames here).
    @Test func theWALIsCheckpointedBesideTheWriterAndStaysBounded() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let configuration = Self.checkpointing(.init(background: 40, writer: 160, backgroundStep: 20))
        var factory = EventFactory()
        var largestWAL = 0
        var appended = 0
        do {
            let store = try EventStore(path: path, configuration: configuration)
            for ticket in 1...150 {
                let events = factory.conversation(messages: 20)
                try await store.append(events, to: .test(ticket))
                appended += events.count
                let wal = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
                largestWAL = max(largestWAL, wal)
            }
            let checkpointer = try #require(store.checkpointer)
            checkpointer.waitForBackground()
            #expect(checkpointer.backgroundCheckpoints > 0)
            // The writer's threshold plus the frames of a commit or two (each well under 100).
            #expect(largestWAL < 400 * (4_096 + 24), "the WAL grew to \(largestWAL) bytes")
            let walFrames = try await store.writer.writeWithoutTransaction { db in
                try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")?[1] as Int?
            }
            #expect(try #require(walFrames) < 160 + 100, "the WAL did not start over")
        }
        // The background connection closes first: the writer's, last, removed the WAL.
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the WAL outlived the store")
        // What was checkpointed and what was left in the WAL: all there after reopening.
        let reopened = try EventStore(path: path, configuration: configuration)
        #expect(try await reopened.readAll(limit: appended + 1).count == appended)
        #expect(try await reopened.verify().isValid)
    }

    /// Small commits share a background checkpoint: one per `backgroundStep` frames of growth,
    /// not one per commit (each with its two syncs, and the pages the commits share copied again).
    @Test func smallCommitsShareABackgroundCheckpoint() async throws {
        let directory = try TemporaryDirectory()
        let store = try EventStore(
            path: directory.path("log.sqlite"),
            configuration: Self.checkpointing(.init(background: 40, writer: 1_000_000, backgroundStep: 300)))
        var factory = EventFactory()
        for ticket in 1...120 {
            try await store.append(factory.conversation(messages: 10), to: .test(ticket))
        }
        let checkpointer = try #require(store.checkpointer)
        checkpointer.waitForBackground()
        // Each commit adds a few dozen frames, so one checkpoint per 300 frames is at most one
        // per five commits; one per commit would be nearly 120 (108 measured without the step).
        let runs = checkpointer.backgroundCheckpoints
        #expect(runs >= 1)
        #expect(runs <= 120 / 5, "\(runs) background checkpoints for 120 commits")
    }

    @Test func aFileOfAnotherApplicationIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("other.sqlite")
        try sqlite3(
            path, "CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);")
        let error = #expect(throws: EventStoreError.self) { try EventStore(path: path) }
        #expect(error?.code == .unknownFormat)
        #expect(error?.message.contains("not a ticketlog log") == true)
        #expect(error?.message.contains("invoices") == true)
        // Refusing touched nothing.
        #expect(try sqlite3(path, "SELECT name FROM sqlite_master WHERE type = 'table'") == "invoices\n")
        #expect(try sqlite3(path, "PRAGMA journal_mode") == "delete\n", "refusing must not switch the file to WAL")
    }

    @Test func aNewerFormatIsRefusedWithAClearMessage() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        do {
            let store = try EventStore(path: path)
            var factory = EventFactory()
            try await store.append(factory.opened(), to: .test(1))
        }
        try sqlite3(path, "UPDATE meta SET value = 7 WHERE key = 'format_version'")
        let error = #expect(throws: EventStoreError.self) { try EventStore(path: path) }
        #expect(error?.code == .unknownFormat)
        #expect(error?.message.contains("format 7; this build reads format 2 (upgrade ticketlog") == true)

        try sqlite3(path, "UPDATE meta SET value = 'someone.else' WHERE key = 'format'")
        let other = #expect(throws: EventStoreError.self) { try EventStore(path: path) }
        #expect(other?.message.contains("'someone.else'") == true)
    }

    @Test func aFileThatIsNotSQLiteIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("notes.txt")
        try Data(String(repeating: "these are not the pages you are looking for\n", count: 200).utf8)
            .write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: EventStoreError.self) { try EventStore(path: path) }
        #expect(error?.code == .unknownFormat)
        #expect(error?.message.contains("not an SQLite database") == true)
    }

    @Test func openingAMissingFileWithoutCreateFails() throws {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.createIfMissing = false
        let path = directory.path("absent.sqlite")
        let error = #expect(throws: EventStoreError.self) { try EventStore(path: path, configuration: configuration) }
        #expect(error?.message.contains("does not exist") == true)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aReopenedLogContinuesTheChain() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var factory = EventFactory()
        do {
            let store = try EventStore(path: path)
            try await store.append(factory.conversation(messages: 3), to: .test(1))
        }
        let reopened = try EventStore(path: path)
        let result = try await reopened.append(factory.message(), to: .test(1), expectedVersion: .exact(7))
        #expect(result.positions == 8...8)
        #expect(try await reopened.verify().eventsVerified == 8)
    }
}

@Suite(.timeLimit(.minutes(3))) struct DictionaryTests {
    @Test(arguments: StoreKind.allCases)
    func theFirstDictionaryIsMadeFromTheLogAndCompressesLaterEvents(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make { $0.dictionaryTrainingThreshold = 100 }
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        for ticket in 0..<12 {
            try await store.append(factory.conversation(messages: 8), to: .test(ticket))
        }
        let usage = try await store.dictionaryUsage()
        #expect(usage.first?.id == 0, "events before the threshold are stored uncompressed")
        #expect(usage.contains { $0.id == 1 && $0.events > 0 }, "usage: \(usage)")

        let sizes = try await store.readSession { session in
            try session.rows("SELECT codec, sum(length(body)), count(*) FROM events GROUP BY codec", []).map {
                (codec: $0[0].integer ?? -1, size: Double($0[1].integer ?? 0) / Double($0[2].integer ?? 1))
            }
        }
        let raw = try #require(sizes.first { $0.codec == 0 }?.size)
        let compressed = try #require(sizes.first { $0.codec == 1 }?.size)
        #expect(raw / compressed > 1.5, "raw \(raw) B/event, compressed \(compressed) B/event")
        #expect(try await store.readAll(limit: 10_000).count == 12 * 12)
        #expect(try await store.verify().isValid)
    }

    @Test(arguments: StoreKind.allCases.filter { $0 != .inMemory })
    func rotationKeepsOldEventsReadable(_ kind: StoreKind) async throws {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.dictionaryTrainingThreshold = nil
        configuration.durability = .normal
        configuration.maximumReaders = 1
        // The same log opened again: a fresh process (on PostgreSQL, another node).
        let location = kind == .postgres ? try await PostgresTestServer.freshLog() : nil
        func open() async throws -> EventStore {
            if let location { return try await EventStore.open(location, configuration: configuration) }
            return try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
        }
        var factory = EventFactory()
        var written: [ProposedEvent] = []
        let store = try await open()
        #expect(try await store.rotateDictionary() == nil, "an empty log has nothing to sample")
        for round in 0..<3 {
            let events = factory.conversation(messages: 20)
            try await store.append(events, to: .test(round))
            written += events
            #expect(try await store.rotateDictionary() == Int64(round + 1))
        }
        #expect(try await store.dictionaryUsage().map(\.id) == [0, 1, 2])
        await store.close()
        let reopened = try await open()
        #expect(try await reopened.readAll(limit: 1_000).map(\.proposed) == written)
        #expect(try await reopened.verify().isValid)
        let dictionaries = try await reopened.readSession { session in
            try session.value("SELECT count(*) FROM dictionaries").integer
        }
        #expect(dictionaries == 3)
        await reopened.close()
    }

    @Test func aCorruptCompressedBodyIsATypedErrorWhenRead() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var factory = EventFactory()
        do {
            var configuration = EventStore.Configuration()
            configuration.dictionaryTrainingThreshold = 10
            let store = try EventStore(path: path, configuration: configuration)
            try await store.append(factory.conversation(messages: 10), to: .test(1))
            try await store.append(factory.conversation(messages: 10), to: .test(2))
        }
        let target = try #require(
            Int64(
                try sqlite3(path, "SELECT max(position) FROM events WHERE codec > 0")
                    .trimmingCharacters(in: .whitespacesAndNewlines)))
        // Cut the LZ4 block short, as a torn write or a bad sector would.
        try sqlite3(
            path,
            """
            DROP TRIGGER events_are_immutable_update;
            UPDATE events SET body = substr(body, 1, length(body) / 2) WHERE position = \(target);
            """)
        let store = try EventStore(path: path)
        let error = await #expect(throws: EventStoreError.self) { try await store.readAll(limit: 100) }
        #expect(error?.code == .corruptRecord)
        #expect(error?.position == target)
        // Everything before it still reads.
        #expect(try await store.readAll(limit: Int(target - 1)).count == Int(target - 1))
        let report = try await store.verify()
        #expect(report.failure?.position == target)
        #expect(report.failure?.kind == .undecodable)
        #expect(report.warnings.contains { $0.contains("events_are_immutable_update") })
    }
}
