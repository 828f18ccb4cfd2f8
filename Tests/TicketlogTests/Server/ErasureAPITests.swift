import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// `DELETE /api/admin/users/:userId/content` (issue 17).
@Suite(.timeLimit(.minutes(3))) struct ErasureAPITests {
    @Test(arguments: StoreKind.backends)
    func adminsEraseAUsersContentOthersAndPlaintextLogsAreRefused(_ kind: StoreKind) async throws {
        let (store, lease) = try await kind.make { $0.masterKey = MasterKey.generate() }
        defer { withExtendedLifetime(lease) {} }
        let a = StreamID.ticket("a")!
        let admin = Actor(id: "ada", role: .admin)
        let kim = Actor(id: "kim", role: .creator)
        try await store.execute(.open(title: "A", brand: "acme", creator: "kim"), on: a, by: admin)
        try await store.execute(.join(user: "kim", role: .creator), on: a, by: kim)
        try await store.execute(
            .postMessage(messageID: "m-1", text: "my address is 1 Main St", attachments: []), on: a, by: kim)
        let router = try await TicketlogServer.router(store: store, configuration: ServerFixture.configuration)
        let app = Application(router: router)
        let body = ByteBuffer(string: #"{"reason":"GDPR request 2026-114"}"#)
        try await app.test(.router) { client in
            let agent = try await client.execute(
                uri: "/api/admin/users/kim/content", method: .delete,
                headers: ServerFixture.headers(try await ServerFixture.token("sam", .agent)), body: body)
            #expect(agent.status == .forbidden)
            let erased = try await client.execute(
                uri: "/api/admin/users/kim/content", method: .delete,
                headers: ServerFixture.headers(try await ServerFixture.token("ada", .admin)), body: body)
            #expect(erased.status == .ok, "\(String(buffer: erased.body))")
            #expect(erased.json?["keysDestroyed"] as? Int == 1)
            let empty = try await client.execute(
                uri: "/api/admin/users/kim/content", method: .delete,
                headers: ServerFixture.headers(try await ServerFixture.token("ada", .admin)),
                body: ByteBuffer(string: #"{"reason":"  "}"#))
            #expect(empty.status == .unprocessableContent)
        }
        #expect(try await store.message("m-1", in: a)?.text == "")
        let audit = try await store.auditTrail(AuditQuery(stream: .erasures))
        #expect(audit.first?.summary.contains("ada (admin) erased the content of kim") == true)

        // The plaintext fixture has no keys to destroy.
        let fixture = try await ServerFixture.make()
        try await fixture.app.test(.router) { client in
            let response = try await client.execute(
                uri: "/api/admin/users/kim/content", method: .delete,
                headers: ServerFixture.headers(try await ServerFixture.token("ada", .admin)), body: body)
            #expect(response.status == .unprocessableContent)
            #expect(String(buffer: response.body).contains("plaintext"))
        }
    }
}
