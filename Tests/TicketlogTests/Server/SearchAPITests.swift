import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// `GET /api/chat/search` (issue 18): each caller finds messages only in the tickets they may
/// read.
@Suite(.timeLimit(.minutes(10))) struct SearchAPITests {
    @Test(arguments: StoreKind.backends) func everyRoleFindsOnlyInItsOwnTickets(_ kind: StoreKind) async throws {
        let fixture = try await ServerFixture.make(kind)
        // ticket-a (acme, kim, agent sam) has "first" from kim; ticket-b (other, jo) gets one too.
        try await fixture.store.execute(
            .postMessage(messageID: "m-b", text: "the first cut of b", attachments: []), on: .ticket("b")!,
            by: Actor(id: "ada", role: .admin))
        let expected: [(String, Actor.Role, [String])] = [
            ("ada", .admin, ["ticket-a", "ticket-b"]), ("sam", .agent, ["ticket-a"]), ("lee", .agent, []),
            ("acme", .brand, ["ticket-a"]), ("other", .brand, ["ticket-b"]), ("kim", .creator, ["ticket-a"]),
            ("jo", .creator, ["ticket-b"]),
        ]
        try await fixture.app.test(.router) { client in
            for (user, role, channels) in expected {
                let response = try await client.execute(
                    uri: "/api/chat/search?q=FIRST", method: .get,
                    headers: ServerFixture.headers(try await ServerFixture.token(user, role)))
                #expect(response.status == .ok)
                let hits = response.json?["hits"] as? [[String: Any]] ?? []
                #expect(hits.compactMap { $0["channelId"] as? String }.sorted() == channels, "\(user)")
            }
            let admin = ServerFixture.headers(try await ServerFixture.token("ada", .admin))
            let one = try await client.execute(uri: "/api/chat/search?q=first&ticket=b", method: .get, headers: admin)
            let hits = one.json?["hits"] as? [[String: Any]] ?? []
            #expect(hits.count == 1 && hits.first?["messageId"] as? String == "m-b")
            let snippet = hits.first?["snippet"] as? [[String: Any]] ?? []
            #expect(snippet.filter { $0["match"] as? Bool == true }.compactMap { $0["text"] as? String } == ["first"])
            for bad in [
                "/api/chat/search", "/api/chat/search?q=", "/api/chat/search?q=%2A%2A",
                "/api/chat/search?q=a&ticket=x%2Fy",
                "/api/chat/search?q=a&from=yesterday", "/api/chat/search?q=a&limit=0",
                "/api/chat/search?q=" + String(repeating: "a", count: 501),
            ] {
                let response = try await client.execute(uri: bad, method: .get, headers: admin)
                #expect(response.status == .badRequest, "\(bad)")
                #expect(response.errorCode == "bad_request")
            }
            let anonymous = try await client.execute(uri: "/api/chat/search?q=first", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
    }
}
