import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import StreamChatEmulator
import Synthetic
import Testing

@testable import StreamChatSync
@testable import Ticketlog
@testable import TicketlogServer
@testable import TicketlogStreamChat

/// Both directions at once, over real loopback HTTP: `ticketlog serve`'s router with its sync
/// service mirrors a desk into the emulator's HTTP server, which injects faults (5xx, 429 bursts,
/// responses cut after the change, latency) and POSTs its signed webhooks back to
/// `/webhooks/stream` — gzip-compressed, a fifth of them twice, shuffled. Users act in Stream,
/// the engine edits messages born there, and at the end the log and Stream agree.
@Suite(.timeLimit(.minutes(10))) struct TwoWayOverHTTPTests {
    @Test func theLogAndStreamEndEqual() async throws {
        let directory = try TemporaryDirectory()
        var storeConfiguration = EventStore.Configuration()
        storeConfiguration.durability = .normal
        let store = try EventStore(path: directory.path("log.sqlite"), configuration: storeConfiguration)
        let desk = Array(SyntheticDesk(.init(tickets: 12, seed: 31, meanMessagesPerTicket: 14)).events())
        try await SyntheticDesk.append(desk, to: store)

        var emulator = StreamEmulator(apiKey: "test-key", apiSecret: ServerFixture.streamSecret)
        emulator.inject(.init(percent: 20, latency: 0...0.002, seed: 11))
        let stream = EmulatorServer(emulator)
        try await Application(router: stream.router()).test(.live) { streamClient in
            let streamURL = "http://127.0.0.1:\(try #require(streamClient.port))"
            var driverConfiguration = OutboxDriver.Configuration()
            driverConfiguration.stateMachine = .init(baseBackoff: 0.005, maximumBackoff: 0.05)
            let live = StreamChatClient.live(
                baseURL: streamURL, auth: StreamChatAuth(apiKey: "test-key", apiSecret: ServerFixture.streamSecret),
                timeout: .seconds(2))
            let app = try await TicketlogServer.application(
                store: store, configuration: ServerFixture.configuration, logger: .disabled,
                extensions: [
                    StreamChatServerExtension(
                        store: store, apiSecret: ServerFixture.streamSecret,
                        mirror: OutboxDriver(store: store, client: live, configuration: driverConfiguration))
                ])
            try await app.test(.live) { engine in
                let delivery = EmulatorServer.WebhookDelivery(
                    url: "http://127.0.0.1:\(try #require(engine.port))/webhooks/stream", duplicatePercent: 20,
                    reorderWindow: 8,
                    compress: true, seed: 3)
                func caughtUp() async throws {
                    let head = try await store.headPosition()
                    for _ in 0..<2_400 where try await store.syncCursor(StreamChatDestination.mirror) < head {
                        try await Task.sleep(for: .milliseconds(25))
                    }
                    #expect(try await store.syncCursor(StreamChatDestination.mirror) == head, "the mirror caught up")
                }

                // 1. The desk goes out; its echoes come back and add nothing.
                try await caughtUp()
                let head = try await store.headPosition()
                let echoes = await stream.deliverWebhooks(delivery)
                #expect(echoes.lost == 0 && echoes.duplicates > 0, "\(echoes)")
                #expect(try await store.headPosition() == head, "echoes of our own writes append nothing")

                // 2. Users act in Stream; their webhooks come in.
                var random = SplitMix(seed: 31)
                _ = stream.state.withLock { InboundEndToEndTests.actInStream(&$0, random: &random) }
                let inbound = await stream.deliverWebhooks(delivery)
                #expect(inbound.lost == 0, "\(inbound)")
                #expect(try await store.headPosition() > head)

                // 3. The engine edits messages born in Stream (as their authors) and deletes some;
                //    they go out to Stream's own message ids.
                let born = stream.state.withLock { emulator in
                    emulator.messages.values.filter {
                        $0.custom["ticketlog_message_id"] == nil && $0.type == "regular" && !$0.deleted
                            && emulator.channels[$0.channel]?.deletedAt == nil
                            && emulator.channels[$0.channel]?.truncatedAt == nil
                    }.sorted { $0.id < $1.id }
                }
                #expect(born.count > 10)
                for (index, message) in born.enumerated() where index % 3 != 2 {
                    let ticket = StreamID(rawValue: message.channel)!
                    if index % 3 == 0 {
                        try await store.execute(
                            .editMessage(messageID: message.id, text: "edited by the engine"), on: ticket,
                            by: Actor(id: message.userID, role: .creator))
                    } else {
                        try await store.execute(
                            .deleteMessage(messageID: message.id), on: ticket, by: Actor(id: "ada", role: .admin))
                    }
                }
                try await caughtUp()
                let afterEdits = try await store.headPosition()
                _ = await stream.deliverWebhooks(delivery)
                #expect(try await store.headPosition() == afterEdits, "echoes of the edits append nothing")
            }
        }

        let final = stream.state.withLock { $0 }
        try await InboundEndToEndTests.expectLogEqualsStream(store, final)
        #expect(try await store.deadLetters(StreamChatDestination.mirror).isEmpty)
        #expect(final.injected.count == 3, "every kind of fault was injected: \(final.injected)")
        // Every message of the log is in Stream exactly once (ours by our id, theirs by theirs).
        for ticket in try await store.tickets() {
            let inStream = (final.channelMessages[ticket.stream.rawValue] ?? []).filter { !$0.hasPrefix("tl-") }
            #expect(Set(inStream).count == inStream.count)
            let logged = try await store.messages(of: ticket.stream, limit: 100_000)
            #expect(inStream.count == logged.count, "\(ticket.stream)")
        }
        #expect(try await store.verify().isValid)
    }
}
