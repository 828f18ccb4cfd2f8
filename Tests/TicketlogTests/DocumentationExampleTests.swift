import Foundation
import Testing

@testable import Ticketlog

/// The examples of the DocC articles, run: documentation that stops matching the code fails here.
@Suite(.timeLimit(.minutes(3))) struct DocumentationExampleTests {
    /// `Ticketlog.docc/EmbeddingTheStore.md`, step by step.
    @Test func embeddingTheStore() async throws {
        let directory = try TemporaryDirectory()
        let store = try EventStore(path: directory.path("tickets.sqlite"))
        let ticket = StreamID.ticket("42")!

        let brand = Actor(id: "acme", role: .brand)
        try await store.execute(.open(title: "Launch video", brand: "acme", creator: "kim"), on: ticket, by: brand)
        try await store.execute(.join(user: "kim", role: .creator), on: ticket, by: Actor(id: "kim", role: .creator))
        let posted = try await store.execute(
            .postMessage(messageID: "m-1", text: "Draft is up", attachments: []), on: ticket,
            by: Actor(id: "kim", role: .creator))
        #expect(posted.events.map(\.position) == [3] && posted.streamVersion == 3)

        let kim = Actor(id: "kim", role: .creator)
        @Sendable func remind() async throws -> CommandOutcome {
            try await store.transact(ticket) { ticket in
                guard ticket.version > 0 else {
                    throw EventStoreError(code: .notFound, message: "no ticket \(ticket.stream)")
                }
                if try ticket.message("reminder") != nil { return [] }
                return [
                    ProposedEvent(
                        actor: kim, payload: .messagePosted(MessagePosted(messageID: "reminder", text: "Due Friday")))
                ]
            }
        }
        let reminded = try await remind()
        #expect(reminded.events.map(\.position) == [4] && reminded.streamVersion == 4)
        #expect(try await remind().events.isEmpty)
        let unknown = await #expect(throws: EventStoreError.self) {
            try await store.transact(.ticket("43")!) { ticket in
                guard ticket.version > 0 else {
                    throw EventStoreError(code: .notFound, message: "no ticket \(ticket.stream)")
                }
                return []
            }
        }
        #expect(unknown?.code == .notFound)

        let event = ProposedEvent(actor: brand, payload: .statusChanged(StatusChanged(from: "open", to: "in_review")))
        let result = try await store.append([event], to: ticket, expectedVersion: .exact(reminded.streamVersion))
        let again = try await store.append([event], to: ticket, expectedVersion: .exact(reminded.streamVersion))
        #expect(again.wasAlreadyStored && again.positions == result.positions)

        #expect(try await store.ticketSummary(ticket)?.status == "in_review")
        #expect(try await store.messages(of: ticket, limit: 50).map(\.messageID) == ["m-1", "reminder"])
        #expect(try await store.ticketState(ticket, at: .position(3)).status == "open")
        let now = try await store.ticketState(ticket, keepingLastMessages: 1)
        #expect(now.status == "in_review" && now.messages.map(\.messageID) == ["reminder"] && now.messagesOmitted == 1)
        #expect(try await store.membersWhenPosted("m-1", in: ticket)?.map(\.user) == ["kim"])
        var seen: [Int64] = []
        for try await event in store.subscribe(from: 1) {
            seen.append(event.position)
            if seen.count == 5 { break }
        }
        #expect(seen == [1, 2, 3, 4, 5])

        let report = try await store.verify()
        #expect(report.failure == nil && report.eventsVerified == 5)
        let refused = await #expect(throws: EventStoreError.self) {
            try await store.execute(.editMessage(messageID: "m-1", text: "mine now"), on: ticket, by: brand)
        }
        #expect(refused?.code == .rejected)
    }
}
