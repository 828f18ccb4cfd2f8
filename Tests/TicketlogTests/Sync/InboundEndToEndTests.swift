import Foundation
import StreamChatEmulator
import Synthetic
import Testing

@testable import StreamChatSync
@testable import Ticketlog

/// Stream → log: everything the emulator's webhooks say (echoes of our own mirror, and users
/// posting, editing and deleting in Stream directly), delivered shuffled, duplicated and mixed
/// with forgeries, leaves the log holding what Stream holds.
@Suite struct InboundEndToEndTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func theLogEndsEqualToStream(_ seed: UInt64) async throws {
        let store = try EventStore.inMemory()
        let desk = Array(SyntheticDesk(.init(tickets: 8, seed: seed, meanMessagesPerTicket: 12)).events())
        try await SyntheticDesk.append(desk, to: store)
        let secret = "inbound-secret-of-at-least-32-bytes"
        let emulator = OutboxDriverTests.FaultyStream(seed: seed, faultPercent: 0)
        try await OutboxDriver(store: store, client: emulator.client).runUntilCaughtUp()

        // Users act in Stream directly.
        var random = SplitMix(seed: seed)
        var clientMessages: [String] = []
        emulator.emulator.withLock { stream in
            for (index, channel) in stream.channels.values.sorted(by: { $0.id < $1.id }).enumerated() {
                guard let author = channel.members.first else { continue }
                for n in 0..<6 {
                    let id = "app-\(index)-\(n)"
                    stream.clientSend(id, in: channel.id, by: author, text: "from the app \(index)/\(n)")
                    clientMessages.append(id)
                }
            }
            for id in clientMessages where Int.random(in: 0..<3, using: &random) == 0 {
                stream.clientEdit(id, text: "edited in the app")
                if Int.random(in: 0..<3, using: &random) == 0 { stream.clientEdit(id, text: "edited twice") }
            }
            for id in clientMessages where Int.random(in: 0..<5, using: &random) == 0 { stream.clientDelete(id) }
        }

        // Deliveries: every webhook, a fifth twice, plus forgeries, in any order at all.
        let webhooks = emulator.emulator.withLock { $0.webhooks }
        var deliveries: [(id: String, body: [UInt8], signature: String)] = []
        for (index, webhook) in webhooks.enumerated() {
            let body = try JSONEncoder().encode(webhook)
            let delivery = (id: "wh-\(index)", body: Array(body), signature: WebhookSignature.sign(body, secret: secret))
            deliveries.append(delivery)
            if Int.random(in: 0..<5, using: &random) == 0 { deliveries.append(delivery) }
            if Int.random(in: 0..<10, using: &random) == 0 {
                var forged = Array(body)
                forged[forged.count / 2] ^= 0x20
                deliveries.append((id: "forged-\(index)", body: forged, signature: delivery.signature))
            }
        }
        deliveries.shuffle(using: &random)

        let handler = WebhookHandler(store: store, apiSecret: secret)
        var rejected = 0
        for delivery in deliveries {
            let result = try await handler.handle(body: delivery.body, signature: delivery.signature, webhookID: delivery.id)
            if case .rejected(let status, _) = result {
                #expect(status == 401)
                #expect(delivery.id.hasPrefix("forged"))
                rejected += 1
            }
        }
        #expect(rejected == deliveries.filter { $0.id.hasPrefix("forged") }.count)

        // The log holds what Stream holds.
        let stream = emulator.emulator.withLock { $0 }
        for channel in stream.channels.values {
            let ticket = StreamID(rawValue: channel.id)!
            let logged = try await store.messages(of: ticket, limit: 100_000)
            let mirrored = (stream.channelMessages[channel.id] ?? []).compactMap { stream.messages[$0] }.filter { $0.type != "system" }
            #expect(logged.count == mirrored.count, "\(channel.id)")
            for message in mirrored {
                let local = logged.first { StreamIDs.message($0.messageID, in: ticket) == message.id || $0.messageID == message.id }
                #expect(local != nil, "\(message.id) missing from the log")
                #expect(local?.isDeleted == message.deleted, "\(message.id)")
                if !message.deleted { #expect(local?.text == message.text, "\(message.id)") }
            }
            #expect(Set(try await store.members(of: ticket).map(\.user)) == Set(channel.members))
        }
        #expect(try await store.verify().isValid)
    }
}
