import Foundation
import StreamChatEmulator
import Synchronization
import Synthetic
import Testing

@testable import StreamChatSync
@testable import Ticketlog

/// Stream → log: everything the emulator's webhooks say (echoes of our own mirror, and users
/// posting, editing and deleting in Stream directly), delivered shuffled, duplicated and mixed
/// with forgeries, leaves the log holding what Stream holds — except what users did in Stream
/// that our rules do not allow them: that is refused, each delivery of it, and changes nothing.
/// (Six minutes: mirroring through the emulator takes seconds alone and over two minutes
/// beside the whole suite on two cores.)
@Suite(.timeLimit(.minutes(6))) struct InboundEndToEndTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func theLogEndsEqualToStreamLessWhatWasNotAllowed(_ seed: UInt64) async throws {
        let store = try EventStore.inMemory()
        let desk = Array(SyntheticDesk(.init(tickets: 8, seed: seed, meanMessagesPerTicket: 12)).events())
        try await SyntheticDesk.append(desk, to: store)
        let secret = "inbound-secret-of-at-least-32-bytes"
        let emulator = OutboxDriverTests.FaultyStream(seed: seed, faultPercent: 0)
        try await OutboxDriver(store: store, client: emulator.client).runUntilCaughtUp()

        // Users act in Stream directly, within their roles: post, edit and delete their own
        // messages, join and leave, change the status, truncate, delete a channel; a backend
        // holding the API secret reassigns agents. Then some overstep their roles.
        var random = SplitMix(seed: seed)
        let (allowed, attacks) = emulator.emulator.withLock { stream in
            let statusChanged = InboundEndToEndTests.actInStream(&stream, random: &random)
            let allowed = stream
            let first = stream.webhooks.count
            InboundEndToEndTests.overstepInStream(&stream, sparing: statusChanged)
            return (allowed, first..<stream.webhooks.count)
        }
        #expect(attacks.count >= 10)

        // Deliveries: every webhook, a fifth twice, plus forgeries, in any order at all.
        let webhooks = emulator.emulator.withLock { $0.webhooks }
        var deliveries: [(id: String, body: [UInt8], signature: String)] = []
        for (index, webhook) in webhooks.enumerated() {
            let body = try JSONEncoder().encode(webhook)
            let prefix = attacks.contains(index) ? "attack" : "wh"
            let delivery = (
                id: "\(prefix)-\(index)", body: Array(body), signature: WebhookSignature.sign(body, secret: secret)
            )
            deliveries.append(delivery)
            if Int.random(in: 0..<5, using: &random) == 0 { deliveries.append(delivery) }
            if Int.random(in: 0..<10, using: &random) == 0 {
                var forged = Array(body)
                forged[forged.count / 2] ^= 0x20
                deliveries.append((id: "forged-\(index)", body: forged, signature: delivery.signature))
            }
        }
        deliveries.shuffle(using: &random)

        let refusals = Mutex<[String]>([])
        let handler = WebhookHandler(store: store, apiSecret: secret) { refusal in
            refusals.withLock { $0.append(refusal.reason) }
        }
        var rejected = 0
        var refused: Set<String> = []
        for delivery in deliveries {
            let result = try await handler.handle(
                body: delivery.body, signature: delivery.signature, webhookID: delivery.id)
            switch result {
            case .rejected(let rejection):
                #expect(rejection == .badSignature)
                #expect(delivery.id.hasPrefix("forged"))
                rejected += 1
            case .refused(let reason):
                #expect(delivery.id.hasPrefix("attack"), "\(delivery.id) was refused: \(reason)")
                refused.insert(delivery.id)
            default:
                #expect(!delivery.id.hasPrefix("attack"), "\(delivery.id) overstepped a role and was let in: \(result)")
            }
        }
        #expect(rejected == deliveries.filter { $0.id.hasPrefix("forged") }.count)
        #expect(refused == Set(attacks.map { "attack-\($0)" }), "every overstep is refused")
        #expect(refusals.withLock { $0.count } >= attacks.count, "each refusal is reported to operators")

        try await Self.expectLogEqualsStream(store, allowed)
        #expect(try await store.verify().isValid)
    }

    /// What the app's users do in Stream directly, within what our rules allow them, seeded.
    /// Returns the channels whose status was changed in Stream.
    ///
    /// - Parameter channelChanges: also change statuses and agents, truncate a channel and
    ///   delete another (who did these is not in Stream's state, so a backfill does not take them).
    @discardableResult
    static func actInStream(_ stream: inout StreamEmulator, random: inout SplitMix, channelChanges: Bool = true) -> Set<
        String
    > {
        var statusChanged: Set<String> = []
        var clientMessages: [String] = []
        let channels = stream.channels.values.filter { $0.deletedAt == nil }.sorted(by: { $0.id < $1.id })
        let truncated = channels.dropFirst().first
        for (index, channel) in channels.enumerated() {
            guard case .string(let brand)? = channel.custom["brand_id"],
                case .string(let creator)? = channel.custom["creator_id"]
            else { continue }
            for n in 0..<6 {
                let id = "app-\(channel.id)-\(n)-\(stream.webhooks.count)"
                stream.clientSend(id, in: channel.id, by: brand, text: "from the app \(index)/\(n)")
                clientMessages.append(id)
            }
            // The creator comes back from the app; a member leaves.
            stream.clientAddMember(creator, to: channel.id)
            if channel.members.count > 2, Int.random(in: 0..<2, using: &random) == 0 {
                stream.clientRemoveMember(channel.members[1], from: channel.id)
            }
        }
        // Authors edit and delete their messages: the app's and those we mirrored (not the
        // agents': an agent reassigned below loses its role, and a delivery of its edit arriving
        // after the reassignment would rightly be refused).
        let ours = stream.messages.values.filter {
            $0.type == "regular" && $0.custom["ticketlog_message_id"] != nil && !$0.deleted
                && !$0.userID.hasPrefix("agent-")
        }.map(\.id).sorted()
        for id in clientMessages + ours where Int.random(in: 0..<4, using: &random) == 0 {
            stream.clientEdit(id, text: "edited in the app")
            if Int.random(in: 0..<3, using: &random) == 0 { stream.clientEdit(id, text: "edited twice") }
        }
        for id in clientMessages + ours where Int.random(in: 0..<8, using: &random) == 0 { stream.clientDelete(id) }
        guard channelChanges else { return [] }
        // Brands change statuses in the app; a backend with the API secret reassigns agents.
        for channel in channels where Int.random(in: 0..<3, using: &random) == 0 {
            guard case .string(let brand)? = channel.custom["brand_id"] else { continue }
            stream.clientUpdateChannel(channel.id, set: ["ticket_status": .string("in_review")], by: brand)
            statusChanged.insert(channel.id)
            if channel.id != truncated?.id {
                stream.serverUpdateChannel(
                    channel.id, set: ["ticket_agent": .string("agent-from-stream")], by: "ops", sdk: "ops-backend-1.0")
            }
        }
        // The assigned agent truncates a channel; a brand deletes another.
        if let truncated, case .string(let agent)? = truncated.custom["ticket_agent"] {
            stream.clientTruncate(truncated.id, by: agent)
        }
        if let deleted = channels.last, channels.count > 2, case .string(let brand)? = deleted.custom["brand_id"] {
            stream.clientDeleteChannel(deleted.id, by: brand)
        }
        return statusChanged
    }

    /// What users do in Stream that our rules do not allow them: someone with no role on the
    /// ticket posts and joins; a creator edits and deletes the brand's messages, names an agent,
    /// truncates the channel. Stream lets them (its permissions are not ours); the log must not.
    ///
    /// A `channel.updated` carries the whole channel, status included, and the log takes a status
    /// that differs from its own as a change by the webhook's user: a creator's overstep on a
    /// channel whose status a brand changed just before could, delivered first, carry that status
    /// in (allowed: creators may change the status). So the agent is named only on channels in
    /// `sparing`'s complement, whose status Stream and the log agree on.
    static func overstepInStream(_ stream: inout StreamEmulator, sparing statusChanged: Set<String>) {
        let channels = stream.channels.values.filter { $0.deletedAt == nil && $0.truncatedAt == nil }.sorted(by: {
            $0.id < $1.id
        })
        for channel in channels.prefix(3) {
            guard case .string(let brand)? = channel.custom["brand_id"],
                case .string(let creator)? = channel.custom["creator_id"]
            else { continue }
            stream.clientSend("intruder-\(channel.id)", in: channel.id, by: "intruder", text: "not your ticket")
            stream.clientAddMember("intruder", to: channel.id)
            let brandMessages = stream.visibleMessages(of: channel.id).filter {
                $0.userID == brand && !$0.deleted && $0.type == "regular"
            }
            if let first = brandMessages.first {
                stream.clientEdit(first.id, text: "rewritten by the creator", by: creator)
            }
            if let last = brandMessages.last { stream.clientDelete(last.id, by: creator) }
            if !statusChanged.contains(channel.id) {
                stream.clientUpdateChannel(channel.id, set: ["ticket_agent": .string("creators-friend")], by: creator)
            }
            stream.clientTruncate(channel.id, by: creator)
        }
    }

    /// The log holds what Stream holds: the same messages (by our id, or Stream's for messages
    /// born there) with the same text and deletions, the same members, the same status and agent.
    static func expectLogEqualsStream(
        _ store: EventStore, _ stream: StreamEmulator, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        for channel in stream.channels.values {
            let ticket = StreamID(rawValue: channel.id)!
            let logged = try await store.messages(of: ticket, limit: 100_000)
            // Not our system messages.
            let visible = stream.visibleMessages(of: channel.id).filter { !$0.id.hasPrefix("tl-") }
            func logID(_ message: StreamEmulator.Message) -> String {
                if case .string(let id)? = message.custom["ticketlog_message_id"] { return id }
                return message.id
            }
            let live = Dictionary(
                visible.filter { !$0.deleted }.map { (logID($0), $0.text) }, uniquingKeysWith: { a, _ in a })
            let loggedLive = Dictionary(
                logged.filter { !$0.isDeleted }.map { ($0.messageID, $0.text ?? "") }, uniquingKeysWith: { a, _ in a })
            #expect(loggedLive == live, "\(channel.id): messages", sourceLocation: sourceLocation)
            for message in visible where message.deleted {
                #expect(
                    logged.first { $0.messageID == logID(message) }?.isDeleted == true,
                    "\(message.id) deleted in Stream", sourceLocation: sourceLocation)
            }
            #expect(
                Set(try await store.members(of: ticket).map(\.user)) == Set(channel.members), "\(channel.id): members",
                sourceLocation: sourceLocation)
            let summary = try #require(try await store.ticketSummary(ticket), sourceLocation: sourceLocation)
            if channel.deletedAt != nil {
                #expect(
                    summary.status == "closed", "\(channel.id) was deleted in Stream", sourceLocation: sourceLocation)
            } else {
                #expect(
                    channel.custom["ticket_status"] == .string(summary.status), "\(channel.id): status",
                    sourceLocation: sourceLocation)
                #expect(
                    channel.custom["ticket_agent"] == summary.agent.map(JSONValue.string), "\(channel.id): agent",
                    sourceLocation: sourceLocation)
            }
        }
    }
}
