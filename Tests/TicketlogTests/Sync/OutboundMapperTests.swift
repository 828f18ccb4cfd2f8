import Foundation
import Testing

@testable import StreamChatSync
@testable import Ticketlog

@Suite(.timeLimit(.minutes(3))) struct OutboundMapperTests {
    static let stream = StreamID.ticket("4711")!

    static func recorded(
        _ payload: EventPayload, by actor: Actor = Actor(id: "agent-7", role: .agent), position: Int64 = 9
    ) -> RecordedEvent {
        RecordedEvent(
            position: position, stream: stream, version: position,
            id: UUID(uuidString: "11111111-2222-4333-8444-555555555555")!,
            actor: actor, occurredAt: .init(microsecondsSinceEpoch: 1), recordedAt: .init(microsecondsSinceEpoch: 2),
            origin: .local, correlationID: nil, causationID: nil, payload: payload)
    }

    static func object(_ value: JSONValue?) -> [String: JSONValue] {
        if case .object(let object)? = value { return object }
        return [:]
    }

    @Test func openingATicketUpsertsUsersAndGetsOrCreatesTheChannel() {
        let requests = OutboundMapper.requests(
            for: Self.recorded(
                .ticketOpened(TicketOpened(title: "Acme campaign brief", brand: "brand-acme", creator: "creator-jane")))
        )
        #expect(requests.map(\.description) == ["POST /users", "POST /channels/messaging/ticket-4711/query"])
        let users = Self.object(Self.object(requests[0].body)["users"])
        #expect(Set(users.keys) == ["agent-7", "brand-acme", "creator-jane"])
        let data = Self.object(Self.object(requests[1].body)["data"])
        #expect(data["created_by_id"] == .string("agent-7"))
        #expect(data["ticket_id"] == .string("4711"))
        #expect(data["name"] == .string("Acme campaign brief"))
    }

    @Test func messagesGetDeterministicIdsAndMarkers() {
        let post = OutboundMapper.requests(
            for: Self.recorded(
                .messagePosted(
                    MessagePosted(
                        messageID: "m-1", text: "Thanks Jane",
                        attachments: [.init(kind: "image", url: "https://cdn.example.com/a.png")]))))
        #expect(post.map(\.description) == ["POST /users", "POST /channels/messaging/ticket-4711/message"])
        let message = Self.object(Self.object(post[1].body)["message"])
        #expect(message["id"] == .string("ticket-4711--m-1"))
        #expect(message["user_id"] == .string("agent-7"))
        #expect(message["ticketlog_event_id"] == .string("11111111-2222-4333-8444-555555555555"))
        #expect(message["ticketlog_position"] == .integer(9))
        // The same event maps to the same request: a retry cannot create a second message.
        #expect(
            OutboundMapper.requests(
                for: Self.recorded(
                    .messagePosted(
                        MessagePosted(
                            messageID: "m-1", text: "Thanks Jane",
                            attachments: [.init(kind: "image", url: "https://cdn.example.com/a.png")])))) == post)

        let edit = OutboundMapper.requests(
            for: Self.recorded(.messageEdited(MessageEdited(messageID: "m-1", text: "Thanks!"))))
        #expect(edit.map(\.description) == ["PUT /messages/ticket-4711--m-1"])
        #expect(Self.object(Self.object(edit[0].body)["set"])["text"] == .string("Thanks!"))
        let delete = OutboundMapper.requests(for: Self.recorded(.messageDeleted(MessageDeleted(messageID: "m-1"))))
        #expect(delete.map(\.description) == ["DELETE /messages/ticket-4711--m-1"])
    }

    @Test func membershipStatusAndDeliverables() {
        let join = OutboundMapper.requests(
            for: Self.recorded(.memberJoined(MemberJoined(user: "brand-acme", role: .brand))))
        #expect(join.map(\.description) == ["POST /users", "POST /channels/messaging/ticket-4711"])
        #expect(Self.object(join[1].body)["add_members"] == .array([.object(["user_id": .string("brand-acme")])]))
        let leave = OutboundMapper.requests(for: Self.recorded(.memberLeft(MemberLeft(user: "brand-acme"))))
        #expect(Self.object(leave[0].body)["remove_members"] == .array([.string("brand-acme")]))

        let status = OutboundMapper.requests(
            for: Self.recorded(.statusChanged(StatusChanged(from: "open", to: "closed"))))
        #expect(
            status.map(\.description) == [
                "PATCH /channels/messaging/ticket-4711", "POST /channels/messaging/ticket-4711/message",
            ])
        #expect(Self.object(Self.object(status[0].body)["set"])["ticket_status"] == .string("closed"))
        let system = Self.object(Self.object(status[1].body)["message"])
        #expect(system["type"] == .string("system"))
        #expect(system["id"] == .string("tl-11111111-2222-4333-8444-555555555555"))

        let deliverable = OutboundMapper.requests(
            for: Self.recorded(
                .deliverablePushed(
                    DeliverablePushed(
                        deliverableID: "d-1", title: "Cut 1", url: "https://cdn.example.com/1.mp4", kind: "video"))))
        let attachment = Self.object(
            Self.object(Self.object(deliverable[0].body)["message"])["attachments"].flatMap {
                if case .array(let items) = $0 { return items.first }
                return nil
            })
        #expect(attachment["asset_url"] == .string("https://cdn.example.com/1.mp4"))
        #expect(attachment["ticketlog_deliverable_id"] == .string("d-1"))
        #expect(
            OutboundMapper.requests(
                for: Self.recorded(.unknown(type: EventType(rawValue: "poll.created"), payload: .null))
            ).isEmpty)
    }

    /// What we send comes back as a webhook echo: it must be recognised and skipped — by what a
    /// Stream client cannot forge: a server-side request from our client, or a marker naming an
    /// event we stored that the mirror turns into exactly this message. A client message that
    /// copies our marker is a message of its own.
    @Test func ourOwnMessagesEchoBackAsIgnoredAndCopiedMarkersDoNot() async throws {
        let store = try EventStore.inMemory()
        let secret = "echo-test-secret-of-at-least-32-bytes"
        let handler = WebhookHandler(store: store, apiSecret: secret)
        try await store.execute(
            .open(title: "T", brand: "acme", creator: "kim"), on: Self.stream, by: Actor(id: "ada", role: .admin))
        let posted = try await store.execute(
            .postMessage(messageID: "m-1", text: "hello", attachments: []), on: Self.stream,
            by: Actor(id: "kim", role: .creator))
        let post = OutboundMapper.requests(for: posted.events[0])
        let message = Self.object(Self.object(post[1].body)["message"])
        try #require(!message.isEmpty, "the post request carries a message")
        func deliver(_ message: [String: JSONValue], requestInfo: JSONValue?, id: String) async throws
            -> WebhookHandler.Outcome
        {
            var body: [String: JSONValue] = [
                "type": .string("message.new"), "cid": .string("messaging:ticket-4711"),
                "channel_id": .string("ticket-4711"),
                "created_at": .string("2026-03-14T09:31:02.118204123Z"), "message": .object(message),
                "user": .object(["id": .string("kim")]),
            ]
            if let requestInfo { body["request_info"] = requestInfo }
            let data = try CanonicalJSON.encode(JSONValue.object(body))
            return try await handler.handle(
                body: Array(data), signature: WebhookSignature.sign(data, secret: secret), webhookID: id)
        }
        let server = JSONValue.object(["type": .string("server"), "sdk": .string(StreamChatAuth.clientName)])
        guard case .ignored(let reason) = try await deliver(message, requestInfo: server, id: "echo") else {
            Issue.record("our own message must not come back in as a new event")
            return
        }
        #expect(reason.contains("echo"))
        // Without request_info (a backfill, a proxy that drops it): the marker is checked against the log.
        guard case .ignored(let checked) = try await deliver(message, requestInfo: nil, id: "echo-2") else {
            Issue.record("a marker naming the stored event that sent exactly this message is an echo")
            return
        }
        #expect(checked.contains("echo"))
        let head = try await store.headPosition()

        // Kim copies the marker onto a message of her own, from her Stream client.
        var copied = message
        copied["id"] = .string("kims-own-message")
        copied["text"] = .string("this must reach the audit trail")
        let client = JSONValue.object(["type": .string("client"), "sdk": .string(StreamChatAuth.clientName)])
        guard case .appended = try await deliver(copied, requestInfo: client, id: "copied") else {
            Issue.record("a copied marker must not keep a message out of the log")
            return
        }
        #expect(try await store.headPosition() == head + 1)
        #expect(try await store.message("kims-own-message", in: Self.stream)?.text == "this must reach the audit trail")
    }

    @Test(arguments: [
        "m-1", "a3f1c0de-52c4-4f0e-9a61-3c0b7e2d9a11", "with space", "comma,percent%",
        String(repeating: "x", count: 255), "ümlaut",
    ])
    func streamMessageIDsAreValidAndDeterministic(_ messageID: String) {
        let id = StreamChatIDs.message(messageID, in: Self.stream)
        #expect(id == StreamChatIDs.message(messageID, in: Self.stream))
        #expect(id.utf8.count <= 255)
        #expect(id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        #expect(id.hasPrefix("ticket-4711--"))
        #expect(id != StreamChatIDs.message(messageID, in: .ticket("4712")!))
    }
}
