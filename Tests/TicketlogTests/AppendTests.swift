import Foundation
import GRDB
import Testing

@testable import Ticketlog

@Suite(.timeLimit(.minutes(10))) struct AppendTests {
    @Test(arguments: StoreKind.allCases)
    func appendedEventsReadBackWithPositionsAndVersions(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let first = factory.conversation(messages: 3)
        let second = factory.conversation(messages: 2)
        let a = try await store.append(first, to: .test(1), expectedVersion: .noStream)
        let b = try await store.append(second, to: .test(2), expectedVersion: .noStream)
        #expect(a.positions == 1...Int64(first.count))
        #expect(a.streamVersion == Int64(first.count))
        #expect(b.positions == Int64(first.count + 1)...Int64(first.count + second.count))
        #expect(b.streamVersion == Int64(second.count))
        #expect(!a.wasAlreadyStored)

        let all = try await store.readAll()
        #expect(all.map(\.position) == Array(1...Int64(first.count + second.count)))
        #expect(all.map(\.proposed) == first + second)
        #expect(all.prefix(first.count).allSatisfy { $0.stream == .test(1) })

        let stream = try await store.readStream(.test(2))
        #expect(stream.map(\.version) == Array(1...Int64(second.count)))
        #expect(stream.map(\.proposed) == second)
        #expect(try await store.version(of: .test(2)) == Int64(second.count))
        #expect(try await store.version(of: .test(3)) == 0)
        #expect(try await store.headPosition() == Int64(first.count + second.count))
    }

    @Test(arguments: StoreKind.allCases)
    func eventsOfUnknownTypesAreStoredAndReadBackUntouched(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        let future = ProposedEvent(
            actor: Actor(id: "bot", role: .system),
            payload: .unknown(
                type: EventType(rawValue: "survey.answered.v3"),
                payload: .object([
                    "score": .integer(9), "tags": .array([.string("fast"), .null]), "ratio": .number(0.75),
                ])))
        try await store.append(future, to: .test(1))
        let read = try #require(try await store.readAll().first)
        #expect(read.proposed == future)
        #expect(read.type.rawValue == "survey.answered.v3")
        let stored = try await store.readSession { session in
            try session.rows(
                "SELECT t.name, e.body FROM events e JOIN event_types t ON t.key = e.type WHERE e.position = 1", []
            ).first
        }
        #expect(stored?[0].text == "survey.answered.v3")
        let body = String(decoding: stored?[1].blob ?? [], as: UTF8.self)
        #expect(body.contains(#""payload":{"ratio":0.75,"score":9,"tags":["fast",null]}"#))
    }

    @Test(arguments: StoreKind.allCases)
    func streamsReadForwardsAndBackwardsFromAVersion(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let events = (0..<10).map { _ in factory.message() }
        try await store.append(events, to: .test(1))
        try await store.append(factory.message(), to: .test(2))

        #expect(try await store.readStream(.test(1), from: 4, limit: 3).map(\.version) == [4, 5, 6])
        #expect(
            try await store.readStream(.test(1), from: 4, direction: .backwards, limit: 3).map(\.version) == [4, 3, 2])
        #expect(try await store.readStream(.test(1), direction: .backwards, limit: 2).map(\.version) == [10, 9])
        #expect(try await store.readStream(.test(1), from: 11).isEmpty)
        #expect(try await store.readStream(.test(9)).isEmpty)
        #expect(try await store.readAll(from: 10, limit: 5).map(\.position) == [10, 11])
        #expect(try await store.readAll(from: 12).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func expectedVersionIsEnforcedAndAConflictNamesTheActualVersion(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        try await store.append([factory.opened(), factory.message()], to: .test(1), expectedVersion: .noStream)

        let noStream = await #expect(throws: EventStoreError.self) {
            try await store.append(factory.message(), to: .test(1), expectedVersion: .noStream)
        }
        #expect(noStream?.code == .versionConflict)
        #expect(noStream?.actualVersion == 2)
        #expect(noStream?.message.contains("at version 2") == true)

        let exact = await #expect(throws: EventStoreError.self) {
            try await store.append(factory.message(), to: .test(1), expectedVersion: .exact(1))
        }
        #expect(exact?.code == .versionConflict)
        #expect(exact?.actualVersion == 2)

        let missing = await #expect(throws: EventStoreError.self) {
            try await store.append(factory.message(), to: .test(5), expectedVersion: .exact(3))
        }
        #expect(missing?.actualVersion == 0)

        let ok = try await store.append(factory.message(), to: .test(1), expectedVersion: .exact(2))
        #expect(ok.streamVersion == 3)
        #expect(try await store.append(factory.message(), to: .test(1), expectedVersion: .any).streamVersion == 4)
        // Rejected appends left nothing behind.
        #expect(try await store.headPosition() == 4)
        #expect(try await store.version(of: .test(5)) == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func reappendingStoredEventsReturnsTheOriginalPositions(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let batch = [factory.opened(), factory.message(), factory.message()]
        let original = try await store.append(batch, to: .test(1), expectedVersion: .noStream)
        try await store.append(factory.message(), to: .test(2))

        // A retry, even with an expected version that no longer holds, is answered from the log.
        let retry = try await store.append(batch, to: .test(1), expectedVersion: .noStream)
        #expect(retry.positions == original.positions)
        #expect(retry.wasAlreadyStored)
        #expect(try await store.headPosition() == 4)

        let single = try await store.append(batch[1], to: .test(1))
        #expect(single.positions == 2...2)
        #expect(single.wasAlreadyStored)
    }

    @Test(arguments: StoreKind.allCases)
    func aStoredIdWithOtherContentIsAnError(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let event = factory.message("original")
        try await store.append(event, to: .test(1))

        var altered = event
        altered.payload = .messagePosted(MessagePosted(messageID: "m-x", text: "altered"))
        let changed = await #expect(throws: EventStoreError.self) { try await store.append(altered, to: .test(1)) }
        #expect(changed?.code == .duplicateEventID)
        #expect(changed?.position == 1)

        let otherStream = await #expect(throws: EventStoreError.self) { try await store.append(event, to: .test(2)) }
        #expect(otherStream?.code == .duplicateEventID)

        let mixed = await #expect(throws: EventStoreError.self) {
            try await store.append([event, factory.message()], to: .test(1))
        }
        #expect(mixed?.code == .duplicateEventID)
        #expect(try await store.headPosition() == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func malformedAppendsAreRejectedBeforeTouchingTheLog(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make { $0.maximumEventSize = 2_000 }
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()

        let empty = await #expect(throws: EventStoreError.self) { try await store.append([], to: .test(1)) }
        #expect(empty?.code == .invalidEvent)

        let event = factory.message()
        let twice = await #expect(throws: EventStoreError.self) {
            try await store.append([event, event], to: .test(1))
        }
        #expect(twice?.code == .invalidEvent)
        #expect(twice?.message.contains("twice") == true)

        let huge = factory.message(String(repeating: "x", count: 5_000))
        let tooLarge = await #expect(throws: EventStoreError.self) { try await store.append(huge, to: .test(1)) }
        #expect(tooLarge?.code == .invalidEvent)
        #expect(tooLarge?.message.contains("limit is 2000") == true)

        let negative = await #expect(throws: EventStoreError.self) {
            try await store.append(factory.message(), to: .test(1), expectedVersion: .exact(-1))
        }
        #expect(negative?.code == .invalidEvent)
        #expect(try await store.headPosition() == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func oneRejectedAppendInAGroupDoesNotTakeTheOthersDown(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        try await store.append(factory.opened(), to: .test(0), expectedVersion: .noStream)
        let appends = (1...40).map { index in
            // Every fifth append conflicts: stream 0 exists already.
            (index, index % 5 == 0 ? StreamID.test(0) : StreamID.test(index), factory.message())
        }
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for (index, stream, event) in appends {
                group.addTask {
                    do {
                        try await store.append(event, to: stream, expectedVersion: .noStream)
                        return (index, true)
                    } catch {
                        return (index, false)
                    }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.filter { !$0.value }.keys.sorted() == [5, 10, 15, 20, 25, 30, 35, 40])
        let all = try await store.readAll()
        #expect(all.count == 1 + 32)
        #expect(all.map(\.position) == Array(1...33))
        #expect(try await store.verify().isValid)
    }

    /// Appends of one transaction see each other: versions continue across them, a retry in the
    /// same group gets the original's result, a conflicting one fails alone, and a one-event
    /// append into an existing stream (written without a savepoint) that clashes leaves nothing.
    @Test(arguments: StoreKind.allCases)
    func appendsInOneTransactionSeeEachOther(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let opened = factory.opened()
        try await store.append(opened, to: .test(1))
        let a = factory.message("a")
        let b = factory.message("b")
        var clash = factory.message("clash")
        clash.id = a.id
        let results = await store.append([
            StreamAppend(stream: .test(1), events: [a]),
            StreamAppend(stream: .test(1), events: [b], expectedVersion: .exact(2)),
            StreamAppend(stream: .test(1), events: [a]),  // a retry of the first
            StreamAppend(stream: .test(1), events: [clash]),  // same id, other content
            StreamAppend(stream: .test(1), events: [factory.message("late")], expectedVersion: .exact(2)),
            StreamAppend(stream: .test(2), events: [factory.opened(), b]),  // b's id again, in a new stream
        ])
        #expect(try results[0].get().positions == 2...2)
        #expect(try results[1].get().positions == 3...3)
        #expect(try results[1].get().streamVersion == 3)
        let retry = try results[2].get()
        #expect(retry.wasAlreadyStored && retry.positions == 2...2 && retry.streamVersion == 3)
        #expect(results[3].errorCode == .duplicateEventID)
        #expect(results[4].errorCode == .versionConflict)
        #expect(results[5].errorCode == .duplicateEventID)
        #expect(try await store.headPosition() == 3)
        #expect(try await store.version(of: .test(1)) == 3)
        #expect(try await store.version(of: .test(2)) == 0)
        #expect(try await store.messages(of: .test(1)).map(\.text) == ["a", "b"])
        // The summaries are written once at the end of the transaction: what the refused
        // appends did to them in memory rolled back with their rows.
        #expect(try await store.ticketSummary(.test(1))?.events == 3)
        #expect(try await store.ticketSummary(.test(2)) == nil)
        let incremental = try await ProjectionTests.dump(store)
        try await store.rebuildProjections()
        #expect(try await ProjectionTests.dump(store) == incremental)
        #expect(try await store.verify().isValid)
    }

    /// A batched call queues its appends before preparing them (the writer waits for each):
    /// appends refused while being prepared keep their places among the results, the call is one
    /// transaction, and appends of other tasks racing it land before or after it, never inside.
    @Test func aBatchedCallIsOneTransactionAndKeepsItsOrder() async throws {
        let directory = try TemporaryDirectory()
        let store = try EventStore(path: directory.path("log.sqlite"))
        let transactions = Counter()
        try store.writer.add(transactionObserver: transactions, extent: .databaseLifetime)
        var factory = EventFactory()
        try await store.append(factory.opened(), to: .test(1))
        var oversized = factory.message(String(repeating: "x", count: 2_000_000))
        oversized.id = UUID()
        var appends: [StreamAppend] = []
        var expected: [String] = []
        for index in 0..<300 {
            switch index % 50 {
            case 7: appends.append(StreamAppend(stream: .test(1), events: []))
            case 31: appends.append(StreamAppend(stream: .test(1), events: [oversized]))
            default:
                appends.append(StreamAppend(stream: .test(1), events: [factory.message("m\(index)")]))
                expected.append("m\(index)")
            }
        }
        let before = transactions.commits
        let others = (0..<20).map { _ in factory.message("other") }
        async let racing: Void = {
            for event in others { try await store.append(event, to: .test(2)) }
        }()
        let results = await store.append(appends)
        try await racing
        #expect(results.count == 300)
        for (index, result) in results.enumerated() {
            switch index % 50 {
            case 7, 31: #expect(result.errorCode == .invalidEvent, "append \(index)")
            default: #expect((try? result.get()) != nil, "append \(index)")
            }
        }
        // The call's events are contiguous, in the call's order.
        let positions = results.compactMap { try? $0.get().positions.lowerBound }
        #expect(positions == Array(positions.first!...positions.first! + Int64(positions.count) - 1))
        #expect(try await store.messages(of: .test(1), limit: 1_000).map(\.text) == expected)
        #expect(transactions.commits - before <= 1 + others.count)
        // Alone, a call of 300 appends is one transaction.
        let alone = transactions.commits
        let again = await store.append(
            (0..<300).map { _ in StreamAppend(stream: .test(3), events: [factory.message()]) })
        #expect(again.allSatisfy { (try? $0.get()) != nil })
        #expect(transactions.commits == alone + 1)
        #expect(try await store.verify().isValid)
    }

    @Test func concurrentAppendsShareTransactions() async throws {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.durability = .full
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
        let transactions = Counter()
        try store.writer.add(transactionObserver: transactions, extent: .databaseLifetime)
        var factory = EventFactory()
        let events = (0..<200).map { _ in factory.message() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, event) in events.enumerated() {
                group.addTask { try await store.append(event, to: .test(index % 16)) }
            }
            try await group.waitForAll()
        }
        let all = try await store.readAll(limit: 1_000)
        #expect(all.count == 200)
        #expect(Set(all.map(\.id)) == Set(events.map(\.id)))
        #expect(all.map(\.position) == Array(1...200))
        // Each stream's versions are gap-free whatever the interleaving.
        for stream in 0..<16 {
            let versions = try await store.readStream(.test(stream)).map(\.version)
            #expect(versions == Array(1...Int64(versions.count)))
        }
        // 200 appends raced for the writer; group commit put several in one transaction. How
        // many per transaction depends on scheduling, so only "fewer than one each" is asserted.
        #expect(transactions.commits < 200, "commits: \(transactions.commits)")
    }

    @Test(arguments: EventStore.Configuration.Durability.allCases)
    func durabilityIsTheConfiguredSynchronousMode(_ durability: EventStore.Configuration.Durability) async throws {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.durability = durability
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
        let synchronous = try await store.writer.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(synchronous == (durability == .full ? 2 : 1))
        #expect(EventStore.Configuration().durability == .full)
    }

    /// Whatever the SQLite build's default (Debian's zeroes every freed page): an encrypted log's
    /// writer zeroes what it frees (an erased key leaves no image), a plaintext log's does not
    /// write freed pages again.
    @Test(arguments: [false, true])
    func freedPagesAreZeroedOnlyInAnEncryptedLog(_ encrypted: Bool) async throws {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.masterKey = encrypted ? MasterKey.generate() : nil
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
        let secureDelete = try await store.writer.write { db in try Int.fetchOne(db, sql: "PRAGMA secure_delete") }
        #expect(secureDelete == (encrypted ? 1 : 0))
    }

    @Test func pageCachesAreTheConfiguredSizes() async throws {
        let directory = try TemporaryDirectory()
        var configuration = EventStore.Configuration()
        configuration.writerCacheBytes = 3 << 20
        configuration.readerCacheBytes = 1 << 20
        configuration.maximumReaders = 2
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
        let writerCache = try await store.writer.write { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") }
        #expect(writerCache == -3_072)
        // Reads at once, so on more than one reader connection: each has the reader's cache.
        // SQLite's memory counter sees the connections.
        let pool = try #require(store.writer as? DatabasePool)
        let readerCaches = try await withThrowingTaskGroup(of: Int?.self) { group in
            for _ in 0..<3 {
                group.addTask { try await pool.read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") } }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(readerCaches == [-1_024, -1_024, -1_024])
        #expect(EventStore.sqliteMemoryInUse > 0)
    }
}

/// Counts commits of a database (GRDB calls observers on the writer's queue).
final class Counter: TransactionObserver, @unchecked Sendable {
    // @unchecked Sendable: `commits` is written only on the database writer's serial queue and
    // read after the writes it counts have completed.
    var commits = 0
    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { commits += 1 }
    func databaseDidRollback(_ db: Database) {}
}

extension Result where Failure == EventStoreError {
    var errorCode: EventStoreError.Code? {
        if case .failure(let error) = self { error.code } else { nil }
    }
}

/// The ids the library mints are ordered by time (UUID version 7), so the unique index on event
/// ids grows at its end instead of everywhere.
@Suite(.timeLimit(.minutes(1))) struct TimeOrderedIDTests {
    func bytes(_ id: UUID) -> [UInt8] { withUnsafeBytes(of: id.uuid) { Array($0) } }

    @Test func anIDIsAVersion7UUIDOfItsMillisecond() {
        let time = Timestamp(microsecondsSinceEpoch: 1_764_000_000_123_456)
        let id = UUID.timeOrdered(at: time, random: .max)
        let raw = bytes(id)
        #expect(raw[6] >> 4 == 7, "version 7: \(id)")
        #expect(raw[8] >> 6 == 0b10, "RFC 9562's variant: \(id)")
        let milliseconds: UInt64 = raw[0..<6].reduce(0) { $0 << 8 | UInt64($1) }
        #expect(milliseconds == 1_764_000_000_123)
        let fraction: UInt64 = UInt64(raw[6] & 0x0f) << 8 | UInt64(raw[7])
        #expect(fraction == 456 * 4_096 / 1_000, "the fraction of the millisecond")
        #expect(UUID.timeOrdered(at: time, random: 1) != id, "the random bits are in the id")
        // Before 1970 counts as 1970, not as a wrapped-around future.
        let early = bytes(UUID.timeOrdered(at: Timestamp(microsecondsSinceEpoch: -5), random: 0))
        #expect(early[0..<6].allSatisfy { $0 == 0 })
    }

    @Test func idsSortAsTheirTimesAndDoNotRepeat() {
        var times = (0..<2_000).map { Int64($0) * 300 + 1_764_000_000_000_000 }  // 0.3 ms apart
        times.shuffle()
        let ids = times.map { (time: $0, id: UUID.timeOrdered(at: Timestamp(microsecondsSinceEpoch: $0))) }
        let byID = ids.sorted { bytes($0.id).lexicographicallyPrecedes(bytes($1.id)) }
        #expect(byID.map(\.time) == times.sorted(), "byte order is time order")
        let now = (0..<10_000).map { _ in UUID.timeOrdered() }
        #expect(Set(now).count == now.count)
    }

    @Test func whatTheLibraryMintsIsTimeOrdered() throws {
        let minted = [
            ProposedEvent(
                actor: Actor(id: "kim", role: .creator), payload: .messageDeleted(MessageDeleted(messageID: "m"))
            )
            .id,
            EventStore.Configuration().newID(),
        ]
        for id in minted { #expect(bytes(id)[6] >> 4 == 7, "\(id)") }
    }
}
