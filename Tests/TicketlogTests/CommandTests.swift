import Foundation
import Testing

@testable import Ticketlog

@Suite(.timeLimit(.minutes(10))) struct CommandTests {
    let brand = Actor(id: "acme", role: .brand)
    let creator = Actor(id: "kim", role: .creator)
    let agent = Actor(id: "sam", role: .agent)
    let admin = Actor(id: "ada", role: .admin)
    let ticket = StreamID.ticket("7")!

    /// A ticket opened on a store of `kind`, and the directory to keep while it is used.
    func opened(_ kind: StoreKind) async throws -> (EventStore, TemporaryDirectory) {
        let (store, directory) = try await kind.make()
        try await store.execute(.open(title: "Spring", brand: "acme", creator: "kim"), on: ticket, by: brand)
        return (store, directory)
    }

    @Test(arguments: StoreKind.backends) func openingTwiceIsAConflictAndCommandsNeedATicket(_ kind: StoreKind)
        async throws
    {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        let again = await #expect(throws: EventStoreError.self) {
            try await store.execute(.open(title: "x", brand: "acme", creator: "kim"), on: ticket, by: brand)
        }
        #expect(again?.code == .versionConflict)
        let missing = await #expect(throws: EventStoreError.self) {
            try await store.execute(.join(user: "kim", role: .creator), on: .ticket("8")!, by: creator)
        }
        #expect(missing?.code == .notFound)
        #expect(missing?.message == "there is no ticket ticket-8")
        #expect(try await store.headPosition() == 1)
    }

    /// `requiringAccess` decides who reaches the ticket on the state the events are appended
    /// to: a stranger, a missing ticket and an agent unassigned by an earlier append of the same
    /// group all get the one `.notFound`, and nothing is appended for them.
    @Test(arguments: StoreKind.backends) func accessIsDecidedInTheWriteItself(_ kind: StoreKind) async throws {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        try await store.execute(.assign(agent: "sam"), on: ticket, by: admin, requiringAccess: true)
        try await store.execute(
            .postMessage(messageID: "m-1", text: "hi", attachments: []), on: ticket, by: agent, requiringAccess: true)
        let head = try await store.headPosition()
        let stranger = Actor(id: "zed", role: .creator)
        for (actor, stream) in [
            (stranger, ticket), (Actor(id: "other", role: .brand), ticket), (creator, .ticket("8")!),
        ] {
            let refused = await #expect(throws: EventStoreError.self) {
                try await store.execute(
                    .postMessage(messageID: "m-x", text: "let me in", attachments: []), on: stream, by: actor,
                    requiringAccess: true)
            }
            #expect(refused?.code == .notFound)
            #expect(refused?.message == "there is no ticket \(stream) that \(actor.id) can see")
            // Input the command would refuse on a ticket the actor reaches: still the same
            // answer, or a stranger could tell taken ids from free ones by the error.
            for command: TicketCommand in [
                .editMessage(messageID: "m\u{1}", text: "x"), .deleteMessage(messageID: "m\u{1}"),
                .join(user: "bad\nuser", role: .creator), .changeStatus(to: "nonsense", note: nil),
            ] {
                let probed = await #expect(throws: EventStoreError.self) {
                    try await store.execute(command, on: stream, by: actor, requiringAccess: true)
                }
                #expect(probed?.message == refused?.message, "\(command)")
            }
        }
        #expect(try await store.headPosition() == head)
        // Unassigned and posting at once: whichever the writer takes first decides.
        async let unassigned = store.execute(.unassign(agent: "sam"), on: ticket, by: admin, requiringAccess: true)
        async let posted = attempt {
            try await store.execute(
                .postMessage(messageID: "m-2", text: "still here?", attachments: []), on: ticket, by: agent,
                requiringAccess: true)
        }
        _ = try await unassigned
        let events = try await store.readStream(ticket)
        let unassignedAt = events.firstIndex { $0.type == .agentUnassigned }!
        let postedAt = events.firstIndex {
            if case .messagePosted(let m) = $0.payload { m.messageID == "m-2" } else { false }
        }
        switch await posted {
        case .success: #expect(postedAt! < unassignedAt)
        case .failure(let error):
            #expect((error as? EventStoreError)?.code == .notFound)
            #expect(postedAt == nil)
        }
    }

    @Test(arguments: StoreKind.backends) func aSecondJoinIsNotASecondMember(_ kind: StoreKind) async throws {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        let first = try await store.execute(.join(user: "kim", role: .creator), on: ticket, by: creator)
        #expect(first.events.map(\.type) == [.memberJoined])
        let second = try await store.execute(.join(user: "kim", role: .creator), on: ticket, by: creator)
        #expect(second.events.isEmpty)
        #expect(second.streamVersion == 2)
        #expect(try await store.members(of: ticket).map(\.user) == ["kim"])
        let left = try await store.execute(.leave(user: "kim"), on: ticket, by: creator)
        #expect(left.events.map(\.type) == [.memberLeft])
        #expect(try await store.execute(.leave(user: "kim"), on: ticket, by: creator).events.isEmpty)
    }

    @Test(arguments: StoreKind.backends) func onlyTheAuthorEditsAndDeletedMessagesStayDeleted(_ kind: StoreKind)
        async throws
    {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        try await store.execute(.postMessage(messageID: "m-1", text: "hello", attachments: []), on: ticket, by: creator)
        let duplicate = await #expect(throws: EventStoreError.self) {
            try await store.execute(
                .postMessage(messageID: "m-1", text: "again", attachments: []), on: ticket, by: creator)
        }
        #expect(duplicate?.code == .versionConflict)
        let notAuthor = await #expect(throws: EventStoreError.self) {
            try await store.execute(.editMessage(messageID: "m-1", text: "hijacked"), on: ticket, by: brand)
        }
        #expect(notAuthor?.code == .rejected)
        try await store.execute(.editMessage(messageID: "m-1", text: "hello!"), on: ticket, by: creator)
        let brandDelete = await #expect(throws: EventStoreError.self) {
            try await store.execute(.deleteMessage(messageID: "m-1"), on: ticket, by: brand)
        }
        #expect(brandDelete?.code == .rejected)
        try await store.execute(.deleteMessage(messageID: "m-1"), on: ticket, by: agent)
        let editDeleted = await #expect(throws: EventStoreError.self) {
            try await store.execute(.editMessage(messageID: "m-1", text: "back"), on: ticket, by: creator)
        }
        #expect(editDeleted?.code == .rejected)
        let unknown = await #expect(throws: EventStoreError.self) {
            try await store.execute(.editMessage(messageID: "m-9", text: "x"), on: ticket, by: creator)
        }
        #expect(unknown?.code == .notFound)
        #expect(try await store.messages(of: ticket).first?.isDeleted == true)
    }

    @Test(arguments: StoreKind.backends) func statusChangesMustChangeToAKnownStatus(_ kind: StoreKind) async throws {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        let same = await #expect(throws: EventStoreError.self) {
            try await store.execute(.changeStatus(to: "open", note: nil), on: ticket, by: agent)
        }
        #expect(same?.code == .rejected)
        let bogus = await #expect(throws: EventStoreError.self) {
            try await store.execute(.changeStatus(to: "done-ish", note: nil), on: ticket, by: agent)
        }
        #expect(bogus?.code == .invalidEvent)
        let changed = try await store.execute(.changeStatus(to: "in_review", note: "draft in"), on: ticket, by: agent)
        #expect(
            changed.events.first?.payload
                == .statusChanged(StatusChanged(from: "open", to: "in_review", note: "draft in")))
    }

    @Test(arguments: StoreKind.backends) func aClientsExpectedVersionIsChecked(_ kind: StoreKind) async throws {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        let stale = await #expect(throws: EventStoreError.self) {
            try await store.execute(.assign(agent: "sam"), on: ticket, by: admin, expectedVersion: 0)
        }
        #expect(stale?.code == .versionConflict)
        #expect(stale?.actualVersion == 1)
        let ok = try await store.execute(.assign(agent: "sam"), on: ticket, by: admin, expectedVersion: 1)
        #expect(ok.streamVersion == 2)
        #expect(try await store.ticketSummary(ticket)?.agent == "sam")
    }

    @Test(arguments: StoreKind.backends) func emptyOrOversizedTextIsInvalid(_ kind: StoreKind) async throws {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        for text in ["", "   \n", String(repeating: "x", count: 10_001)] {
            let error = await #expect(throws: EventStoreError.self) {
                try await store.execute(
                    .postMessage(messageID: "m-2", text: text, attachments: []), on: ticket, by: creator)
            }
            #expect(error?.code == .invalidEvent)
        }
        #expect(try await store.headPosition() == 1)
    }

    @Test(arguments: StoreKind.backends) func concurrentCommandsAreDecidedOnFreshState(_ kind: StoreKind) async throws {
        let (store, directory) = try await opened(kind)
        defer { withExtendedLifetime(directory) {} }
        // Twenty joins of the same user race: exactly one member.joined is appended.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask { try await store.execute(.join(user: "kim", role: .creator), on: ticket, by: creator) }
            }
            try await group.waitForAll()
        }
        let joins = try await store.readStream(ticket).filter { $0.type == .memberJoined }
        #expect(joins.count == 1)
    }

    /// Commands are decided inside the write transaction, several per transaction when they
    /// race: each sees what the ones before it in the same transaction did, projections whose
    /// rows are written at the end of the transaction (the ticket summary) included.
    @Test func commandsSharingATransactionSeeEachOther() async throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        let store = try EventStore(path: directory.path("log.sqlite"))
        try await store.execute(.open(title: "Spring", brand: "acme", creator: "kim"), on: ticket, by: brand)
        let outcomes = await withTaskGroup(of: (String, Result<CommandOutcome, any Error>).self) { group in
            for index in 0..<30 {
                group.addTask {
                    let command: TicketCommand = .postMessage(
                        messageID: "m-\(index)", text: "hello \(index)", attachments: [])
                    return ("post", await attempt { try await store.execute(command, on: ticket, by: creator) })
                }
            }
            for _ in 0..<10 {
                group.addTask {
                    (
                        "status",
                        await attempt {
                            try await store.execute(.changeStatus(to: "in_progress", note: nil), on: ticket, by: admin)
                        }
                    )
                }
            }
            return await group.reduce(into: [(String, Result<CommandOutcome, any Error>)]()) { $0.append($1) }
        }
        let posts = outcomes.filter { $0.0 == "post" }
        #expect(posts.allSatisfy { (try? $0.1.get().events.count) == 1 })
        let statuses = outcomes.filter { $0.0 == "status" }
        #expect(statuses.filter { (try? $0.1.get()) != nil }.count == 1, "exactly one status change goes through")
        #expect(
            statuses.compactMap { ($0.1.failure as? EventStoreError)?.code }
                == Array(repeating: EventStoreError.Code.rejected, count: 9))
        let events = try await store.readStream(ticket)
        #expect(events.map(\.version) == Array(1...Int64(1 + 30 + 1)))
        #expect(events.filter { $0.type == .statusChanged }.count == 1)
        #expect(try await store.ticketSummary(ticket)?.status == "in_progress")
        #expect(try await store.messages(of: ticket, limit: 100).count == 30)
        #expect(try await store.checkProjections().holds)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}

private func attempt(_ body: () async throws -> CommandOutcome) async -> Result<CommandOutcome, any Error> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}
