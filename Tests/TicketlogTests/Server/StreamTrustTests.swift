import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

@testable import StreamChatSync
@testable import Ticketlog
@testable import TicketlogServer

/// The Stream trust boundary (issue 13): deliveries signed exactly as Stream signs them, carrying
/// what a Stream client can set. Each of these once ended as a well-formed, correctly chained
/// event that `verify` called OK.
///
/// The fixture's ticket-a: brand acme, creator kim, agent sam; acme's message `m-acme` is the
/// victim, kim the attacker.
@Suite(.timeLimit(.minutes(2))) struct StreamTrustTests {
    let fixture: ServerFixture
    let log: LogRecorder
    let a = StreamID.ticket("a")!

    init() async throws {
        log = LogRecorder()
        fixture = try await ServerFixture.make(logger: log.logger)
        try await fixture.store.execute(
            .postMessage(messageID: "m-acme", text: "the brief, final", attachments: []), on: a,
            by: Actor(id: "acme", role: .brand))
    }

    /// POSTs a webhook body to `/webhooks/stream`, signed with the app's secret as Stream does.
    static func deliver(_ client: some TestClientProtocol, _ body: [String: Any], id: String = UUID().uuidString)
        async throws -> TestResponse
    {
        let data = try JSONSerialization.data(withJSONObject: body)
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[HTTPField.Name("X-Signature")!] = WebhookSignature.sign(data, secret: ServerFixture.streamSecret)
        headers[HTTPField.Name("X-Webhook-Id")!] = id
        return try await client.execute(
            uri: "/webhooks/stream", method: .post, headers: headers, body: ByteBuffer(bytes: data))
    }

    /// A message webhook as a Stream client's action produces it (`request_info.type: client`).
    static func message(
        _ type: String, in channel: String = "ticket-a", id: String, text: String, by user: String, at time: String,
        custom: [String: Any] = [:], requestInfo: [String: Any] = ["type": "client", "sdk": "stream-chat-swift-v5.4.0"]
    ) -> [String: Any] {
        var message: [String: Any] = [
            "id": id, "text": text, "type": type == "message.deleted" ? "deleted" : "regular", "user": ["id": user],
            "created_at": "2026-11-29T10:00:00Z", "updated_at": time,
        ]
        if type == "message.deleted" { message["deleted_at"] = time }
        message.merge(custom) { $1 }
        return [
            "type": type, "cid": "messaging:\(channel)", "channel_id": channel, "channel_type": "messaging",
            "message": message,
            "user": ["id": user], "created_at": time, "request_info": requestInfo,
        ]
    }

    static func result(_ response: TestResponse) -> String? { response.json?["result"] as? String }

    /// 2a. Kim's own Stream message carries `ticketlog_message_id: m-acme`. It stays her message:
    /// its edit and deletion change hers, never acme's. Pretending to be acme's message in Stream
    /// (its Stream id) gets her nowhere either: only the author edits, only the author, an agent
    /// or an admin deletes.
    @Test func aClientSetMessageIDDoesNotMakeAnotherUsersMessageYours() async throws {
        try await fixture.app.test(.router) { client in
            let claim: [String: Any] = ["ticketlog_message_id": "m-acme"]
            let posted = try await Self.deliver(
                client,
                Self.message(
                    "message.new", id: "kim-1", text: "mine", by: "kim", at: "2026-11-29T10:00:01Z", custom: claim))
            #expect(Self.result(posted) == "appended", "\(String(buffer: posted.body))")
            let edited = try await Self.deliver(
                client,
                Self.message(
                    "message.updated", id: "kim-1", text: "rewritten", by: "kim", at: "2026-11-29T10:00:02Z",
                    custom: claim))
            #expect(Self.result(edited) == "appended")
            let deleted = try await Self.deliver(
                client,
                Self.message(
                    "message.deleted", id: "kim-1", text: "", by: "kim", at: "2026-11-29T10:00:03Z", custom: claim))
            #expect(Self.result(deleted) == "appended")
            #expect(
                try await fixture.store.message("kim-1", in: a)?.isDeleted == true,
                "her own message took the edit and the deletion")

            let head = try await fixture.store.headPosition()
            let acmesStreamID = StreamChatIDs.message("m-acme", in: a)
            for type in ["message.updated", "message.deleted"] {
                let response = try await Self.deliver(
                    client,
                    Self.message(
                        type, id: acmesStreamID, text: "kim was here", by: "kim", at: "2026-11-29T10:00:04Z",
                        custom: claim))
                #expect(Self.result(response) == "refused", "\(type): \(String(buffer: response.body))")
            }
            #expect(try await fixture.store.headPosition() == head)
        }
        let victim = try #require(try await fixture.store.message("m-acme", in: a))
        #expect(victim.text == "the brief, final" && !victim.isDeleted && victim.edits == 0)
        let touched = try await fixture.store.auditTrail(AuditQuery(stream: a, actor: "kim")).filter {
            $0.summary.contains("m-acme")
        }
        #expect(touched.isEmpty, "nothing in the audit trail says kim changed acme's message")
        #expect(try await fixture.store.verify().isValid)
    }

    /// 2b. A `ticketlog_event_id` marker copied from a real message, and a `request_info.sdk`
    /// naming our client on a client request, no longer make a message an "echo" that skips the log.
    @Test func copiedMarkersAndClientNamesDoNotKeepAMessageOutOfTheLog() async throws {
        let acmes = try #require(try await fixture.store.auditTrail(AuditQuery(stream: a, actor: "acme")).last)
        try await fixture.app.test(.router) { client in
            let marker: [String: Any] = [
                "ticketlog_event_id": acmes.event.id.uuidString.lowercased(), "ticketlog_position": acmes.position,
            ]
            let ours: [String: Any] = ["type": "client", "sdk": StreamChatAuth.clientName]
            let first = try await Self.deliver(
                client,
                Self.message(
                    "message.new", id: "kim-2", text: "say it was an echo", by: "kim", at: "2026-11-29T10:01:00Z",
                    custom: marker))
            let second = try await Self.deliver(
                client,
                Self.message(
                    "message.new", id: "kim-3", text: "say we sent it", by: "kim", at: "2026-11-29T10:01:01Z",
                    requestInfo: ours))
            #expect(Self.result(first) == "appended", "\(String(buffer: first.body))")
            #expect(Self.result(second) == "appended", "\(String(buffer: second.body))")
        }
        let audit = try await fixture.store.auditTrail(AuditQuery(stream: a, actor: "kim")).map(\.summary)
        #expect(audit.contains { $0.contains("kim-2") && $0.contains("say it was an echo") })
        #expect(audit.contains { $0.contains("kim-3") && $0.contains("say we sent it") })
    }

    /// 2c. A creator setting `ticket_agent` in Stream assigned an agent of her choosing, whose
    /// token could then read the ticket. Only admins assign: refused, counted, logged. An admin
    /// who joined the ticket through the API may (the control).
    @Test func onlyAnAdminAssignsAnAgentThroughStream() async throws {
        try await fixture.app.test(.router) { client in
            let channelUpdate: (String, String, String) -> [String: Any] = { agent, user, time in
                [
                    "type": "channel.updated", "cid": "messaging:ticket-a", "channel_id": "ticket-a",
                    "created_at": time,
                    "channel": ["id": "ticket-a", "ticket_status": "open", "ticket_agent": agent], "user": ["id": user],
                    "request_info": ["type": "client"],
                ]
            }
            let refused = try await Self.deliver(client, channelUpdate("mallory", "kim", "2026-11-29T11:00:00Z"))
            #expect(Self.result(refused) == "refused")
            #expect((refused.json?["reason"] as? String)?.contains("only admins") == true)
            #expect(try await fixture.store.ticketSummary(a)?.agent == "sam")
            let mallory = try await ServerFixture.token("mallory", .agent)
            let read = try await client.execute(
                uri: "/api/chat/tickets/a/messages", method: .get, headers: ServerFixture.headers(mallory))
            #expect(read.status == .notFound, "mallory cannot read the ticket")

            try await fixture.store.execute(.join(user: "ada", role: .admin), on: a, by: Actor(id: "ada", role: .admin))
            let allowed = try await Self.deliver(client, channelUpdate("lee", "ada", "2026-11-29T11:00:01Z"))
            #expect(Self.result(allowed) == "appended", "\(String(buffer: allowed.body))")
            #expect(try await fixture.store.ticketSummary(a)?.agent == "lee")

            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(
                metrics.contains(#"ticketlog_stream_chat_webhooks_refused_total{type="channel.updated"} 1"#),
                "\(metrics)")
        }
        #expect(
            log.messages.contains { $0.contains("Change from Stream refused") && $0.contains("only admins") },
            "\(log.messages)")
    }

    /// 2d. A `message.new` for a ticket that does not exist created its stream, and the brand's
    /// own attempt to open that ticket then failed (409, then 403): ticket-id squatting.
    @Test func aWebhookCannotOpenATicket() async throws {
        let squatted = StreamID.ticket("next")!
        try await fixture.app.test(.router) { client in
            let squat = try await Self.deliver(
                client,
                Self.message(
                    "message.new", in: squatted.rawValue, id: "x", text: "first!", by: "mallory",
                    at: "2026-11-29T12:00:00Z"))
            #expect(squat.status == .ok)
            #expect(Self.result(squat) == "refused")
            #expect(try await fixture.store.version(of: squatted) == 0, "no stream was created")

            let acme = try await ServerFixture.token("acme", .brand)
            let open = try await client.execute(
                uri: "/api/chat/tickets", method: .post, headers: ServerFixture.headers(acme),
                body: ByteBuffer(string: #"{"ticketId":"next","title":"Next","brand":"acme","creator":"kim"}"#))
            #expect(open.status == .created, "\(String(buffer: open.body))")
        }
    }

    /// Someone with no role on the ticket (Stream's channel permissions are not ours) changes nothing.
    @Test func aUserWithoutARoleOnTheTicketChangesNothing() async throws {
        let before = try await HostileRequestTests.digest(fixture.store)
        try await fixture.app.test(.router) { client in
            let posted = try await Self.deliver(
                client, Self.message("message.new", id: "m-x", text: "hello", by: "mallory", at: "2026-11-29T13:00:00Z")
            )
            #expect(Self.result(posted) == "refused")
            let joined: [String: Any] = [
                "type": "member.added", "channel_id": "ticket-a", "created_at": "2026-11-29T13:00:01Z",
                "member": ["user_id": "mallory"], "user": ["id": "mallory"], "request_info": ["type": "client"],
            ]
            #expect(Self.result(try await Self.deliver(client, joined)) == "refused")
            // A brand truncating the channel deletes everyone's messages: only agents and admins may.
            let truncated: [String: Any] = [
                "type": "channel.truncated", "channel_id": "ticket-a", "created_at": "2026-11-29T13:00:02Z",
                "channel": ["id": "ticket-a", "truncated_at": "2026-11-29T13:00:02Z"], "user": ["id": "acme"],
                "request_info": ["type": "client"],
            ]
            #expect(Self.result(try await Self.deliver(client, truncated)) == "refused")
        }
        #expect(try await HostileRequestTests.digest(fixture.store) == before, "the log is byte for byte as before")
    }
}

/// Keeps what a `Logger` logs, for tests that check an operator would see something.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }.map {
                "\($0.key)=\($0.value)"
            }
            recorder.lines.withLock { $0.append("\(event.level) \(event.message) \(fields.joined(separator: " "))") }
        }
    }
}
