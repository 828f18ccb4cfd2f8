import Foundation
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
}
