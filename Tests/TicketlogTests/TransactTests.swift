import Foundation
import GRDB
import Testing

@testable import Ticketlog

/// `EventStore.transact`: deciding inside the write transaction.
@Suite(.timeLimit(.minutes(10))) struct TransactTests {
    let kim = Actor(id: "kim", role: .creator)
    let ticket = StreamID.ticket("42")!

    struct NotToday: Error {}

    func post(_ id: String, _ text: String) -> ProposedEvent {
        ProposedEvent(actor: kim, payload: .messagePosted(MessagePosted(messageID: id, text: text)))
    }

    @Test(arguments: StoreKind.allCases) func theDecisionSeesEveryAppendBeforeItAndNothingSlipsIn(_ kind: StoreKind)
        async throws
    {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        // Forty racing decisions, each naming its message after the version it saw: if two saw
        // the same version, two messages would share a name (and the second would be a no-op).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await store.transact(ticket) { ticket in
                        let id = "after-\(ticket.version)"
                        let existing = try ticket.message(id)
                        #expect(existing == nil)
                        return [post(id, "posted at version \(ticket.version + 1)")]
                    }
                }
            }
            try await group.waitForAll()
        }
        let messages = try await store.messages(of: ticket, limit: 100)
        #expect(messages.map(\.messageID) == (0..<40).map { "after-\($0)" })
        #expect(try await store.version(of: ticket) == 40)
    }

    @Test(arguments: StoreKind.backends) func theOutcomeIsWhatAReadReturnsAndNothingIsNothing(_ kind: StoreKind)
        async throws
    {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        let outcome = try await store.transact(ticket) { ticket in
            let summary = try ticket.summary()
            #expect(ticket.version == 0 && summary == nil)
            return [post("m-1", "hello"), post("m-2", "again")]
        }
        #expect(outcome.streamVersion == 2)
        #expect(outcome.events == (try await store.readStream(ticket)))
        let nothing = try await store.transact(ticket) { ticket in
            let (message, summary) = (try ticket.message("m-1"), try ticket.summary())
            #expect(message?.text == "hello" && summary?.events == 2)
            return []
        }
        #expect(nothing.events.isEmpty && nothing.streamVersion == 2)
        #expect(try await store.headPosition() == 2)
    }

    /// What a decision writes besides its events (sync marks) is kept with them: kept by a
    /// decision that appends or decides on nothing, taken back from one that throws — also when
    /// the decisions share a transaction (racing here, so that they do).
    @Test(arguments: StoreKind.allCases) func whatADecisionWritesGoesWithIt(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<30 {
                group.addTask {
                    do {
                        try await store.transact(ticket) { ticket in
                            _ = try ticket.raiseSyncMark("test", key: "k-\(index)", to: Int64(index))
                            switch index % 3 {
                            case 0: return [post("m-\(index)", "text \(index)")]
                            case 1: return []
                            default: throw NotToday()
                            }
                        }
                        return (index, true)
                    } catch {
                        return (index, false)
                    }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        for index in 0..<30 {
            #expect(outcomes[index] == (index % 3 != 2), "decision \(index)")
            let mark = try await store.syncMark("test", key: "k-\(index)")
            #expect(mark == (index % 3 == 2 ? nil : Int64(index)), "the mark of decision \(index)")
        }
        #expect(try await store.messages(of: ticket, limit: 100).count == 10)
        // The posts' search documents wait for the transaction's end (no decision searches):
        // those of the appends that went through are indexed, nothing else.
        #expect(
            Set(try await store.search(MessageSearch("text")).map(\.messageID))
                == Set((0..<30).filter { $0 % 3 == 0 }.map { "m-\($0)" }))
        #expect(try await store.checkProjections().holds)
        #expect(try await store.verify().isValid)
    }

    /// A decision that throws fails its own append, with its own error; the appends it shares a
    /// transaction with go through.
    @Test(arguments: StoreKind.allCases) func aThrowingDecisionFailsAloneWithItsError(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        let results = await withTaskGroup(of: (Int, Bool, (any Error)?).self) { group in
            for index in 0..<20 {
                group.addTask {
                    do {
                        try await store.transact(ticket) { _ in
                            if index % 4 == 0 { throw NotToday() }
                            if index % 4 == 1 { throw EventStoreError(code: .rejected, message: "no") }
                            return [post("m-\(index)", "text \(index)")]
                        }
                        return (index, true, nil)
                    } catch {
                        return (index, false, error)
                    }
                }
            }
            return await group.reduce(into: [(Int, Bool, (any Error)?)]()) { $0.append($1) }
        }
        for (index, succeeded, error) in results {
            switch index % 4 {
            case 0: #expect(error is NotToday)
            case 1: #expect((error as? EventStoreError)?.code == .rejected)
            default: #expect(succeeded, "\(String(describing: error))")
            }
        }
        #expect(try await store.messages(of: ticket, limit: 100).count == 10)
        // The posts' search documents wait for the transaction's end (no decision searches):
        // those of the appends that went through are indexed, nothing else.
        #expect(
            Set(try await store.search(MessageSearch("text")).map(\.messageID))
                == Set((0..<20).filter { $0 % 4 > 1 }.map { "m-\($0)" }))
        #expect(try await store.checkProjections().holds)
        #expect(try await store.verify().isValid)
    }

    /// A statement after which SQLite rolls the whole transaction back by itself — a full
    /// database here (`max_page_count`), an I/O error or an interrupt elsewhere — inside one
    /// append's decision, which the transaction takes as that append's failure: the appends
    /// after it in the same transaction are not written, not even alone. Each statement after
    /// such a rollback would commit on its own (SQLite's autocommit), so the writer checks the
    /// transaction is still open before each append, before its closing writes and its commit;
    /// without those checks the post after the full decision is stored while its caller is told
    /// the transaction failed.
    @Test func appendsAfterARollbackBySQLiteAreNotWrittenAlone() async throws {
        let (store, directory) = try await StoreKind.file.make()
        defer { withExtendedLifetime(directory) {} }
        _ = try await store.append([post("m-0", "before")], to: ticket)
        let full = PreparedAppend(
            stream: ticket, expectedVersion: .any, recordedAt: .now, events: [],
            decide: { session, _ in
                let db = (session as! SQLiteSession).db
                do {
                    let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                    try db.execute(sql: "PRAGMA max_page_count = \(pages)")
                    defer { try? db.execute(sql: "PRAGMA max_page_count = 1073741823") }
                    try db.execute(
                        sql: "INSERT INTO sync_marks(destination, key, value) VALUES ('full', ?, 1)",
                        arguments: [String(repeating: "x", count: 1 << 20)])
                } catch {
                    // As `transact` takes a decision's failure: this append's alone.
                    throw TransactFailure(cause: error)
                }
                return [post("m-full", "never")]
            })
        let after = try store.prepare([post("m-1", "after")], stream: ticket, expectedVersion: .any)
        let results = await store.commit([.prepared(full), .prepared(after)])
        #expect(results.count == 2)
        for result in results {
            guard case .failure(let error) = result else {
                Issue.record("an append of the rolled-back transaction went through")
                continue
            }
            #expect((error as? EventStoreError)?.code == .storageFailure, "\(error)")
        }
        #expect(try await store.headPosition() == 1)
        #expect(try await store.readStream(ticket).count == 1)
        #expect(try await store.messages(of: ticket, limit: 10).map(\.messageID) == ["m-0"])
        #expect(try await store.syncMark("full", key: String(repeating: "x", count: 1 << 20)) == nil)
        #expect(try await store.verify().isValid)
        // The writer goes on: the next append takes the next position.
        let next = try await store.append([post("m-2", "later")], to: ticket)
        #expect(next.positions == 2...2)
        #expect(try await store.checkProjections().holds)
    }

    /// A decided append the log refuses after writing part of it — a new ticket's two events, the
    /// second's id stored already — leaves nothing of it: not the first event, not the ticket's
    /// stream. One event into an existing ticket, refused for its id, takes no savepoint and
    /// leaves nothing either (its insert is the statement refused).
    @Test(arguments: StoreKind.allCases) func aRefusedDecidedAppendLeavesNothing(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        let stored = post("m-stored", "already here")
        _ = try await store.append([stored], to: StreamID.ticket("7")!)
        func reusing(_ messageID: String) -> ProposedEvent {
            ProposedEvent(
                id: stored.id, actor: kim, payload: .messagePosted(MessagePosted(messageID: messageID, text: "again")))
        }
        let (first, second, fourth) = (post("m-1", "first"), reusing("m-2"), reusing("m-4"))
        await #expect(throws: EventStoreError.self) {
            try await store.transact(ticket) { _ in [first, second] }
        }
        #expect(try await store.version(of: ticket) == 0)
        #expect(try await store.headPosition() == 1)
        _ = try await store.append([post("m-3", "third")], to: ticket)
        await #expect(throws: EventStoreError.self) {
            try await store.transact(ticket) { _ in [fourth] }
        }
        #expect(try await store.version(of: ticket) == 1)
        #expect(try await store.headPosition() == 2)
        #expect(try await store.messages(of: ticket, limit: 10).map(\.messageID) == ["m-3"])
        #expect(try await store.checkProjections().holds)
        #expect(try await store.verify().isValid)
    }
}
