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

        // Users act in Stream directly: post, edit and delete (their messages and ours), join
        // and leave, change the status and the agent, truncate one channel, delete another.
        var random = SplitMix(seed: seed)
        emulator.emulator.withLock { stream in
            InboundEndToEndTests.actInStream(&stream, random: &random)
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

        try await Self.expectLogEqualsStream(store, emulator.emulator.withLock { $0 })
        #expect(try await store.verify().isValid)
    }

    /// What the app's users do in Stream directly, seeded.
    static func actInStream(_ stream: inout StreamEmulator, random: inout SplitMix) {
        var clientMessages: [String] = []
        let channels = stream.channels.values.filter { $0.deletedAt == nil }.sorted(by: { $0.id < $1.id })
        for (index, channel) in channels.enumerated() {
            guard let author = channel.members.first else { continue }
            for n in 0..<6 {
                let id = "app-\(channel.id)-\(n)-\(stream.webhooks.count)"
                stream.clientSend(id, in: channel.id, by: author, text: "from the app \(index)/\(n)")
                clientMessages.append(id)
            }
            // Someone from the app joins; a member leaves.
            stream.clientAddMember("app-user-\(index)", to: channel.id)
            if channel.members.count > 2, Int.random(in: 0..<2, using: &random) == 0 {
                stream.clientRemoveMember(channel.members[1], from: channel.id)
            }
        }
        // Edits and deletes of the app's messages and of messages we mirrored.
        let ours = stream.messages.values.filter { $0.type == "regular" && $0.custom["ticketlog_message_id"] != nil && !$0.deleted }
            .map(\.id).sorted()
        for id in clientMessages + ours where Int.random(in: 0..<4, using: &random) == 0 {
            stream.clientEdit(id, text: "edited in the app")
            if Int.random(in: 0..<3, using: &random) == 0 { stream.clientEdit(id, text: "edited twice") }
        }
        for id in clientMessages + ours where Int.random(in: 0..<8, using: &random) == 0 { stream.clientDelete(id) }
        // A moderator changes statuses and agents in the dashboard.
        for channel in channels where Int.random(in: 0..<3, using: &random) == 0 {
            stream.clientUpdateChannel(channel.id, set: ["ticket_status": .string("in_review"), "ticket_agent": .string("agent-from-stream")], by: "moderator")
        }
        if let truncated = channels.dropFirst().first { stream.clientTruncate(truncated.id, by: "moderator") }
        if let deleted = channels.last, channels.count > 2 { stream.clientDeleteChannel(deleted.id, by: "moderator") }
    }

    /// The log holds what Stream holds: the same messages (by our id, or Stream's for messages
    /// born there) with the same text and deletions, the same members, the same status and agent.
    static func expectLogEqualsStream(_ store: EventStore, _ stream: StreamEmulator, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for channel in stream.channels.values {
            let ticket = StreamID(rawValue: channel.id)!
            let logged = try await store.messages(of: ticket, limit: 100_000)
            let visible = stream.visibleMessages(of: channel.id).filter { !$0.id.hasPrefix("tl-") }  // not our system messages
            func logID(_ message: StreamEmulator.Message) -> String {
                if case .string(let id)? = message.custom["ticketlog_message_id"] { return id }
                return message.id
            }
            let live = Dictionary(visible.filter { !$0.deleted }.map { (logID($0), $0.text) }, uniquingKeysWith: { a, _ in a })
            let loggedLive = Dictionary(logged.filter { !$0.isDeleted }.map { ($0.messageID, $0.text ?? "") }, uniquingKeysWith: { a, _ in a })
            #expect(loggedLive == live, "\(channel.id): messages", sourceLocation: sourceLocation)
            for message in visible where message.deleted {
                #expect(logged.first { $0.messageID == logID(message) }?.isDeleted == true, "\(message.id) deleted in Stream", sourceLocation: sourceLocation)
            }
            #expect(Set(try await store.members(of: ticket).map(\.user)) == Set(channel.members), "\(channel.id): members", sourceLocation: sourceLocation)
            let summary = try #require(try await store.ticketSummary(ticket), sourceLocation: sourceLocation)
            if channel.deletedAt != nil {
                #expect(summary.status == "closed", "\(channel.id) was deleted in Stream", sourceLocation: sourceLocation)
            } else {
                #expect(channel.custom["ticket_status"] == .string(summary.status), "\(channel.id): status", sourceLocation: sourceLocation)
                #expect(channel.custom["ticket_agent"] == summary.agent.map(JSONValue.string), "\(channel.id): agent", sourceLocation: sourceLocation)
            }
        }
    }
}
