import Foundation
import Testing

@testable import StreamChatSync
@testable import Ticketlog

/// Webhook verification and translation against the fixtures in `Fixtures/stream/webhooks`
/// (shapes from Stream's docs and SDK recordings; signatures made with the fixture secret).
@Suite(.timeLimit(.minutes(3))) struct WebhookTests {
    static let directory = fixturesDirectory.appendingPathComponent("stream/webhooks")

    static func signatures() throws -> (secret: String, byFile: [String: String]) {
        let data = try Data(contentsOf: directory.appendingPathComponent("SIGNATURES.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (object["secret_used_for_fixtures"] as! String, object["signatures"] as! [String: String])
    }

    static func body(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }

    /// The fixtures' ticket as the log would have it.
    static let ticket = TicketSummary(
        stream: StreamID(rawValue: "ticket-4711")!, title: "Launch", brand: "brand-acme", creator: "creator-jane",
        agent: "agent-7",
        status: "open", openedAt: nil, lastActivityAt: Timestamp(microsecondsSinceEpoch: 0), lastPosition: 1, events: 1,
        deliverables: 0, members: 0, messages: 0)

    @Test func fixtureSignaturesVerifyAndTamperingDoesNot() throws {
        let (secret, byFile) = try Self.signatures()
        #expect(byFile.count >= 10)
        for (file, signature) in byFile where !file.hasSuffix(".bin") {
            let body = try Self.body(String(file.dropFirst("webhooks/".count)))
            #expect(WebhookSignature.isValid(signature, for: body, secret: secret), "\(file)")
            #expect(WebhookSignature.sign(body, secret: secret) == signature)
            var tampered = Array(body)
            tampered[tampered.count / 2] ^= 0x01
            #expect(!WebhookSignature.isValid(signature, for: tampered, secret: secret), "\(file) tampered")
            #expect(!WebhookSignature.isValid(signature, for: body, secret: secret + "x"), "\(file) wrong secret")
            #expect(!WebhookSignature.isValid(signature.uppercased() + "00", for: body, secret: secret))
            #expect(!WebhookSignature.isValid("not hex", for: body, secret: secret))
        }
    }

    /// The vector Stream publishes in getstream-go's test fixtures.
    @Test func streamsOwnVectorVerifies() {
        let body = Data(#"{"type":"message.new","created_at":1778198400000000000}"#.utf8)
        #expect(
            WebhookSignature.sign(body, secret: "test_secret_do_not_use_in_production")
                == "408ab27d58b18a584d29f2801dde0d5ad20e5f5965039ac88d2ef49014a2c4a7")
    }

    @Test func messageEventsBecomeMessageEvents() throws {
        let role: (String) -> Actor.Role? = {
            $0.hasPrefix("creator") ? .creator : $0.hasPrefix("agent") ? .agent : .brand
        }
        let new = try WebhookEvent.parse(try Self.body("message.new.json"))
        guard
            case .append(let stream, let events) = WebhookTranslator.translate(
                new, webhookID: "wh-1", ticket: Self.ticket, role: role)
        else {
            Issue.record("message.new must append")
            return
        }
        #expect(stream == StreamID(rawValue: "ticket-4711"))
        #expect(events.count == 1)
        #expect(
            events[0].payload
                == .messagePosted(
                    MessagePosted(
                        messageID: "a3f1c0de-52c4-4f0e-9a61-3c0b7e2d9a11",
                        text: "Here is the revised brief, please have a look.")))
        #expect(events[0].actor == Actor(id: "creator-jane", role: .creator))
        #expect(events[0].origin == .streamChat(webhookID: "wh-1", messageID: "a3f1c0de-52c4-4f0e-9a61-3c0b7e2d9a11"))
        #expect(events[0].occurredAt == Timestamp(iso8601: "2026-03-14T09:26:53.589793Z"))

        // A second delivery of the same webhook derives the same event id: appending is idempotent.
        guard
            case .append(_, let again) = WebhookTranslator.translate(
                new, webhookID: "wh-2", ticket: Self.ticket, role: role)
        else {
            Issue.record("a second delivery must append the same events")
            return
        }
        #expect(again[0].id == events[0].id)

        let updated = try WebhookEvent.parse(try Self.body("message.updated.json"))
        guard
            case .append(_, let edits) = WebhookTranslator.translate(
                updated, webhookID: nil, ticket: Self.ticket, role: role)
        else {
            Issue.record("message.updated must append")
            return
        }
        #expect(
            edits[0].payload
                == .messageEdited(
                    MessageEdited(
                        messageID: "a3f1c0de-52c4-4f0e-9a61-3c0b7e2d9a11",
                        text: "Here is the revised brief (v3), please have a look.")))
        #expect(edits[0].id != events[0].id)

        for file in ["message.deleted.soft.json", "message.deleted.hard.json"] {
            let deleted = try WebhookEvent.parse(try Self.body(file))
            guard
                case .append(_, let deletes) = WebhookTranslator.translate(
                    deleted, webhookID: nil, ticket: Self.ticket, role: role)
            else {
                Issue.record("\(file) must append")
                continue
            }
            #expect(deletes[0].type == .messageDeleted)
        }
    }

    /// A ticket the log does not have is not created by a webhook: tickets are opened through
    /// the API (a `message.new` for an unknown ticket once squatted its id).
    @Test func webhooksForUnknownTicketsAreRefused() throws {
        let new = try WebhookEvent.parse(try Self.body("message.new.json"))
        guard
            case .refuse(let reason) = WebhookTranslator.translate(
                new, webhookID: nil, ticket: nil, role: { _ in .brand })
        else {
            Issue.record("a message for a ticket the log does not have must be refused")
            return
        }
        #expect(reason.contains("does not have"))
    }

    @Test func membersJoinAndLeave() throws {
        let added = try WebhookEvent.parse(try Self.body("member.added.json"))
        guard
            case .append(_, let joins) = WebhookTranslator.translate(
                added, webhookID: nil, ticket: Self.ticket, role: { _ in .brand })
        else {
            Issue.record("member.added must append")
            return
        }
        #expect(joins[0].payload == .memberJoined(MemberJoined(user: "brand-acme", role: .brand)))
        let removed = try WebhookEvent.parse(try Self.body("member.removed.json"))
        guard
            case .append(_, let leaves) = WebhookTranslator.translate(
                removed, webhookID: nil, ticket: Self.ticket, role: { _ in .brand })
        else {
            Issue.record("member.removed must append")
            return
        }
        #expect(leaves[0].payload == .memberLeft(MemberLeft(user: "brand-acme")))
    }

    @Test func otherEventsAreAcknowledgedWithoutEvents() throws {
        for file in ["export.channels.success.json", "member.updated.json", "channel.created.json"] {
            let webhook = try WebhookEvent.parse(try Self.body(file))
            guard
                case .ignore = WebhookTranslator.translate(
                    webhook, webhookID: nil, ticket: Self.ticket, role: { _ in .brand })
            else {
                Issue.record("\(file) should not append")
                continue
            }
        }
        let error = #expect(throws: StreamChatError.self) { try WebhookEvent.parse(Data("{\"created_at\": 1".utf8)) }
        #expect(error?.message.contains("not valid JSON") == true)
        let missing = #expect(throws: StreamChatError.self) { try WebhookEvent.parse(Data("{}".utf8)) }
        #expect(missing?.message.contains("missing field 'type'") == true)
    }
}

extension WebhookTests {
    /// Membership webhooks carry no message marker; our own are recognised by the client name
    /// Stream echoes as `request_info.sdk` — on a server-side request only: any Stream client can
    /// send our client name, none can make a request server-side.
    @Test func ourOwnMembershipChangesEchoBackAsIgnored() throws {
        let body = String(decoding: try Self.body("member.added.json"), as: UTF8.self)
        let ours = body.replacingOccurrences(
            of: "\"sdk\": \"ticket-engine-swift-1.0.0\"", with: "\"sdk\": \"\(StreamChatAuth.clientName)\"")
        #expect(ours != body)
        let webhook = try WebhookEvent.parse(Data(ours.utf8))
        #expect(webhook.requestInfo?.type == "server")
        guard
            case .ignore(let reason) = WebhookTranslator.translate(
                webhook, webhookID: nil, ticket: Self.ticket, role: { _ in .brand })
        else {
            Issue.record("our own member.added must be ignored")
            return
        }
        #expect(reason.contains("echo"))

        let forged = try WebhookEvent.parse(
            Data(ours.replacingOccurrences(of: "\"type\": \"server\"", with: "\"type\": \"client\"").utf8))
        #expect(forged.requestInfo?.type == "client" && forged.requestInfo?.sdk == StreamChatAuth.clientName)
        guard
            case .append = WebhookTranslator.translate(
                forged, webhookID: nil, ticket: Self.ticket, role: { _ in .brand })
        else {
            Issue.record("a client-side request naming our client is not an echo")
            return
        }
    }
}

/// `channel.truncated` and `channel.deleted` through the handler.
@Suite(.timeLimit(.minutes(3))) struct ChannelWebhookTests {
    static let secret = "channel-webhook-secret-of-32-bytes!!"

    static func deliver(_ handler: WebhookHandler, _ body: [String: Any], id: String) async throws
        -> WebhookHandler.Outcome
    {
        let data = try JSONSerialization.data(withJSONObject: body)
        return try await handler.handle(
            body: Array(data), signature: WebhookSignature.sign(data, secret: secret), webhookID: id)
    }

    /// A ticket longer than one append may carry is truncated in several appends; a repeat adds
    /// nothing, and a late `message.new` from before the truncation stays out.
    @Test func aLongTicketIsTruncatedWhole() async throws {
        var configuration = EventStore.Configuration()
        configuration.maximumEventsPerAppend = 5
        let store = try EventStore.inMemory(configuration: configuration)
        let ticket = StreamID.test(1)
        var factory = EventFactory()
        try await store.append(factory.opened(), to: ticket)
        for _ in 0..<12 { try await store.append(factory.message(), to: ticket) }
        try await store.execute(.assign(agent: "sam"), on: ticket, by: Actor(id: "ada", role: .admin))
        let handler = WebhookHandler(store: store, apiSecret: Self.secret)
        // The ticket's agent truncates the channel in a Stream client.
        let truncated: [String: Any] = [
            "type": "channel.truncated", "channel_id": ticket.rawValue, "created_at": "2099-01-01T00:00:00.000001Z",
            "channel": ["id": ticket.rawValue, "truncated_at": "2099-01-01T00:00:00Z"], "user": ["id": "sam"],
            "request_info": ["type": "client"],
        ]
        guard case .appended(let positions, false) = try await Self.deliver(handler, truncated, id: "wh-1") else {
            Issue.record("the truncation appended nothing")
            return
        }
        #expect(positions.count == 12)
        #expect(try await store.messages(of: ticket, limit: 100).allSatisfy(\.isDeleted))
        guard case .ignored = try await Self.deliver(handler, truncated, id: "wh-1") else {
            Issue.record("a repeated truncation must add nothing")
            return
        }
        let late: [String: Any] = [
            "type": "message.new", "channel_id": ticket.rawValue, "created_at": "2098-12-31T00:00:00Z",
            "message": [
                "id": "late", "text": "from before", "user": ["id": "kim"], "created_at": "2098-12-31T00:00:00Z",
            ],
        ]
        guard case .ignored(let reason) = try await Self.deliver(handler, late, id: "wh-2") else {
            Issue.record("a message from before the truncation must stay out")
            return
        }
        #expect(reason.contains("truncated"))
        #expect(try await store.verify().isValid)
    }

    /// The marks a delivery raises are written with its events or not at all: an update whose
    /// event cannot be appended (here: larger than the log accepts) leaves no mark behind, so
    /// the same update, once it fits, is not taken for stale.
    @Test func aChangeThatCannotBeAppendedRaisesNoMark() async throws {
        var configuration = EventStore.Configuration()
        configuration.maximumEventSize = 2_000
        let store = try EventStore.inMemory(configuration: configuration)
        let ticket = StreamID.test(1)
        var factory = EventFactory()
        try await store.append(factory.opened(), to: ticket)
        let handler = WebhookHandler(store: store, apiSecret: Self.secret)
        func update(_ text: String) -> [String: Any] {
            [
                "type": "message.updated", "channel_id": ticket.rawValue, "created_at": "2099-01-01T00:00:02Z",
                "message": [
                    "id": "m-big", "text": text, "user": ["id": "kim"], "created_at": "2099-01-01T00:00:00Z",
                    "updated_at": "2099-01-01T00:00:01Z",
                ],
                "user": ["id": "kim"],
            ]
        }
        let key = "message|\(ticket)|m-big"
        let tooLarge = await #expect(throws: EventStoreError.self) {
            try await Self.deliver(handler, update(String(repeating: "long words ", count: 300)), id: "wh-big")
        }
        #expect(tooLarge?.code == .invalidEvent)
        #expect(try await store.syncMark(StreamChatDestination.webhooks, key: key) == nil)
        #expect(try await store.headPosition() == 1)
        guard case .appended = try await Self.deliver(handler, update("short"), id: "wh-small") else {
            Issue.record("the same update, small enough, must go in")
            return
        }
        #expect(try await store.syncMark(StreamChatDestination.webhooks, key: key) != nil)
        #expect(try await store.message("m-big", in: ticket)?.text == "short")
    }

    @Test func aDeletedChannelClosesTheTicket() async throws {
        let store = try EventStore.inMemory()
        let ticket = StreamID.test(2)
        var factory = EventFactory()
        try await store.append(factory.opened(), to: ticket)
        let handler = WebhookHandler(store: store, apiSecret: Self.secret)
        // The brand deletes the channel in a Stream client.
        let deleted: [String: Any] = [
            "type": "channel.deleted", "channel_id": ticket.rawValue, "created_at": "2099-01-01T00:00:00Z",
            "channel": ["id": ticket.rawValue, "deleted_at": "2099-01-01T00:00:00Z"], "user": ["id": "acme"],
            "request_info": ["type": "client"],
        ]
        _ = try await Self.deliver(handler, deleted, id: "wh-3")
        #expect(try await store.ticketSummary(ticket)?.status == "closed")
        guard case .ignored = try await Self.deliver(handler, deleted, id: "wh-4") else {
            Issue.record("a second deletion must add nothing")
            return
        }
    }
}
