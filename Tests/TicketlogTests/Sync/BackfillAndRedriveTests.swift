import Foundation
import StreamChatEmulator
import Synchronization
import Synthetic
import Testing

@testable import StreamChatSync
@testable import Ticketlog

/// Recovering what was lost: `sync import --channel` backfills from Stream's history when
/// webhooks never arrived, and `sync redrive` sends dead letters again once fixed.
@Suite(.timeLimit(.minutes(10))) struct BackfillAndRedriveTests {
    @Test func aBackfillAfterLostWebhooksLeavesTheLogEqualToStream() async throws {
        let store = try EventStore.inMemory()
        let desk = Array(SyntheticDesk(.init(tickets: 6, seed: 17, meanMessagesPerTicket: 40)).events())
        try await SyntheticDesk.append(desk, to: store)
        let stream = OutboxDriverTests.FaultyStream(seed: 17, faultPercent: 0)
        try await OutboxDriver(store: store, client: stream.client).runUntilCaughtUp()

        // Users act in Stream while the engine is down: every webhook is lost. (Not on the channel
        // itself: Stream's channel state does not say who set a status or truncated, so a backfill
        // leaves those to their webhooks; see the test below.)
        var random = SplitMix(seed: 17)
        _ = stream.emulator.withLock { InboundEndToEndTests.actInStream(&$0, random: &random, channelChanges: false) }
        let head = try await store.headPosition()
        // Pages of 7 (Stream's default is 25; 100 here by default): many pages per channel; and
        // the emulator fails a fifth of the queries, which the backfill retries.
        stream.emulator.withLock { $0.inject(.init(percent: 20, burst: 1...1, seed: 3)) }
        let backfill = StreamChatBackfill(store: store, client: stream.client, pageSize: 7)
        var (appended, pages) = (0, 0)
        let tickets = try await store.tickets()
        for ticket in tickets {
            let report = try await backfill.importChannel(ticket.stream)
            #expect(report.reconciledOurChanges)
            (appended, pages) = (appended + report.appended, pages + report.pages)
        }
        #expect(appended > 0)
        #expect(pages > 3 * tickets.count)
        #expect(try await store.headPosition() == head + Int64(appended))
        try await InboundEndToEndTests.expectLogEqualsStream(store, stream.emulator.withLock { $0 })
        #expect(stream.faults > 0)

        // Again: nothing new. And a channel Stream does not have is a clear error.
        for ticket in try await store.tickets() {
            #expect(try await backfill.importChannel(ticket.stream).appended == 0, "\(ticket.stream)")
        }
        #expect(try await store.headPosition() == head + Int64(appended))
        await #expect(throws: StreamChatError.self) { try await backfill.importChannel(.ticket("missing")!) }
        #expect(try await store.verify().isValid)
    }

    /// A channel's custom fields are whatever a client with the permission wrote, and Stream's
    /// state does not say who: a backfill refuses a status or an agent it finds there (counted,
    /// logged), as it would from a webhook by someone without the role.
    @Test func aBackfillDoesNotTakeChannelFieldsWhoseAuthorIsUnknown() async throws {
        let store = try EventStore.inMemory()
        let ticket = StreamID.ticket("42")!
        try await store.execute(
            .open(title: "T", brand: "acme", creator: "kim"), on: ticket, by: Actor(id: "ada", role: .admin))
        try await store.execute(.assign(agent: "sam"), on: ticket, by: Actor(id: "ada", role: .admin))
        let stream = OutboxDriverTests.FaultyStream(seed: 5, faultPercent: 0)
        try await OutboxDriver(store: store, client: stream.client).runUntilCaughtUp()
        stream.emulator.withLock {
            $0.clientUpdateChannel(
                ticket.rawValue, set: ["ticket_agent": .string("kims-friend"), "ticket_status": .string("closed")],
                by: "kim")
            $0.clientSend("kim-1", in: ticket.rawValue, by: "kim", text: "from the app")
        }
        let refusals = Mutex<[WebhookHandler.Refusal]>([])
        let backfill = StreamChatBackfill(store: store, client: stream.client) { refusal in
            refusals.withLock { $0.append(refusal) }
        }
        let report = try await backfill.importChannel(ticket)
        #expect(report.appended == 1, "kim's message is hers: Stream records its author")
        let summary = try #require(try await store.ticketSummary(ticket))
        #expect(summary.agent == "sam" && summary.status == "open")
        #expect(refusals.withLock { $0.map(\.type) }.contains("channel.updated"))
    }

    @Test func aDeadLetterIsDeliveredOnceItsCauseIsFixed() async throws {
        let store = try EventStore.inMemory()
        var factory = EventFactory()
        let orphan = StreamID.ticket("never-opened")!
        try await store.append(factory.message("orphan"), to: orphan)
        let stream = OutboxDriverTests.FaultyStream(seed: 1, faultPercent: 0)
        let driver = OutboxDriver(store: store, client: stream.client)
        try await driver.runUntilCaughtUp()
        let letter = try #require(try await store.deadLetters(StreamChatDestination.mirror).first)

        // Still broken: refused again, the reason kept.
        guard case .refused(let reason) = try await driver.redrive(position: letter.position) else {
            Issue.record("a re-drive into a missing channel must be refused")
            return
        }
        #expect(reason.contains("404"))
        #expect(try await store.deadLetters(StreamChatDestination.mirror).count == 1)

        // Fixed in Stream (the channel created by hand): delivered, and off the list.
        stream.emulator.withLock { emulator in
            _ = emulator.handle(
                .init(
                    method: "POST", path: "/users", query: stream.auth.query, headers: stream.auth.headers,
                    body: .object(["users": .object(["ops": .object(["id": .string("ops")])])])))
            _ = emulator.handle(
                .init(
                    method: "POST", path: "/channels/messaging/ticket-never-opened/query", query: stream.auth.query,
                    headers: stream.auth.headers, body: .object(["data": .object(["created_by_id": .string("ops")])])))
        }
        #expect(try await driver.redrive(position: letter.position) == .delivered)
        #expect(try await store.deadLetters(StreamChatDestination.mirror).isEmpty)
        #expect(stream.emulator.withLock { $0.channelMessages["ticket-never-opened"]?.count } == 1)
        await #expect(throws: StreamChatError.self) { try await driver.redrive(position: letter.position) }
    }
}
