import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import StreamChatEmulator
import StreamChatSync
import Testing

@testable import Ticketlog
@testable import TicketlogServer
@testable import TicketlogStreamChat

/// `POST /webhooks/stream` over loopback with the Stream fixtures, re-signed with the server's
/// secret.
@Suite(.timeLimit(.minutes(3))) struct WebhookEndpointTests {
    static func fixture(_ name: String) throws -> Data {
        try Data(contentsOf: fixturesDirectory.appendingPathComponent("stream/webhooks/\(name)"))
    }

    /// A log holding ticket-4711 as the fixtures describe it.
    static func server() async throws -> (EventStore, Application<RouterResponder<TicketlogRequestContext>>) {
        let store = try EventStore.inMemory()
        let stream = StreamID.ticket("4711")!
        let admin = Actor(id: "admin-1", role: .admin)
        try await store.execute(
            .open(title: "Acme brief", brand: "brand-acme", creator: "creator-jane"), on: stream, by: admin)
        try await store.execute(.assign(agent: "agent-7"), on: stream, by: admin)
        let router = try await TicketlogServer.router(
            store: store, configuration: ServerFixture.configuration,
            extensions: [StreamChatServerExtension(store: store, apiSecret: ServerFixture.streamSecret)])
        return (store, Application(router: router))
    }

    static func post(_ client: some TestClientProtocol, _ body: Data, signature: String?, id: String = "wh-1")
        async throws -> TestResponse
    {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let signature { headers[HTTPField.Name("X-Signature")!] = signature }
        headers[HTTPField.Name("X-Webhook-Id")!] = id
        return try await client.execute(
            uri: "/webhooks/stream", method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    static func sign(_ body: Data) -> String { WebhookSignature.sign(body, secret: ServerFixture.streamSecret) }

    @Test func aSignedMessageIsAppendedOnceWhateverTheRetries() async throws {
        let (store, app) = try await Self.server()
        let body = try Self.fixture("message.new.json")
        try await app.test(.live) { client in
            let first = try await Self.post(client, body, signature: Self.sign(body))
            #expect(first.status == .ok, "\(String(buffer: first.body))")
            #expect(first.json?["result"] as? String == "appended")
            // The retry comes gzip-compressed (payload compression on), signed over the JSON.
            let retry = try await Self.post(
                client, Data(StreamEmulator.gzip(Array(body))), signature: Self.sign(body), id: "wh-1")
            #expect(retry.json?["result"] as? String == "ignored")
            #expect((retry.json?["reason"] as? String)?.contains("in the log already") == true)
        }
        let last = try #require(try await store.readStream(.ticket("4711")!, direction: .backwards, limit: 1).first)
        #expect(last.type == .messagePosted)
        #expect(last.actor == Actor(id: "creator-jane", role: .creator))
        #expect(last.origin == .streamChat(webhookID: "wh-1", messageID: "a3f1c0de-52c4-4f0e-9a61-3c0b7e2d9a11"))
        #expect(try await store.headPosition() == 3)
        #expect(
            try await store.messages(of: .ticket("4711")!).map(\.text) == [
                "Here is the revised brief, please have a look."
            ])
    }

    @Test func forgedUnreadableAndCompressedDeliveriesAppendNothing() async throws {
        let (store, app) = try await Self.server()
        let body = try Self.fixture("message.new.json")
        try await app.test(.live) { client in
            let forged = try await Self.post(
                client, body, signature: WebhookSignature.sign(body, secret: "another-secret-also-32-bytes-long!!"))
            #expect(forged.status == .unauthorized)
            #expect(forged.errorCode == "unauthorized")
            let unsigned = try await Self.post(client, body, signature: nil)
            #expect(unsigned.status == .unauthorized)
            var altered = body
            altered[altered.count / 2] ^= 0x01
            #expect(try await Self.post(client, altered, signature: Self.sign(body)).status == .unauthorized)
            let garbage = Data("{\"type\": ".utf8)
            let unreadable = try await Self.post(client, garbage, signature: Self.sign(garbage))
            #expect(unreadable.status == .badRequest)
            // Compressed deliveries are signed over the JSON, not over the gzip bytes.
            let gzip = Data(StreamEmulator.gzip(Array(body)))
            #expect(try await Self.post(client, gzip, signature: Self.sign(gzip)).status == .unauthorized)
            let broken = Data(gzip.prefix(gzip.count - 12))
            let truncated = try await Self.post(client, broken, signature: Self.sign(body))
            #expect(truncated.status == .badRequest)
        }
        #expect(try await store.headPosition() == 2)
    }

    @Test func echoesAndUnmirroredTypesAreAcknowledged() async throws {
        let (store, app) = try await Self.server()
        // The fixture is another engine's server-side send; made ours by the client name Stream
        // echoes (`request_info.sdk`) on a server-side request, which only the API secret can make.
        let echo = Data(
            String(decoding: try Self.fixture("message.new.echo_of_server_send.json"), as: UTF8.self)
                .replacingOccurrences(of: "\"ticket_event_id\"", with: "\"ticketlog_event_id\"")
                .replacingOccurrences(
                    of: "\"sdk\": \"ticket-engine-swift-1.0.0\"", with: "\"sdk\": \"\(StreamChatAuth.clientName)\""
                ).utf8)
        try await app.test(.live) { client in
            for body in [echo, try Self.fixture("export.channels.success.json")] {
                let response = try await Self.post(client, body, signature: Self.sign(body))
                #expect(response.status == .ok)
                #expect(response.json?["result"] as? String == "ignored")
                #expect((response.json?["reason"] as? String)?.isEmpty == false)
            }
            let added = try Self.fixture("member.added.json")
            let joined = try await Self.post(client, added, signature: Self.sign(added))
            #expect(joined.json?["result"] as? String == "appended")
            // A status set on the channel in Stream (by another server here) becomes a status change.
            let updated = try Self.fixture("channel.updated.json")
            let changed = try await Self.post(client, updated, signature: Self.sign(updated))
            #expect(changed.json?["result"] as? String == "appended")
            let again = try await Self.post(client, updated, signature: Self.sign(updated), id: "wh-2")
            #expect(again.json?["result"] as? String == "ignored")
        }
        let summary = try #require(try await store.ticketSummary(.ticket("4711")!))
        #expect(summary.status == "in_review")
        #expect(summary.agent == "agent-7")
        #expect(try await store.members(of: .ticket("4711")!).map(\.user) == ["brand-acme"])
        #expect(try await store.members(of: .ticket("4711")!).first?.role == .brand)
    }
}
