import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// The dashboard's extra reads (issue 18): a message's audience, ticket analytics, integrity.
@Suite(.timeLimit(.minutes(10))) struct InsightAPITests {
    @Test(arguments: StoreKind.backends) func audienceAnalyticsAndIntegrityFollowTheRoles(_ kind: StoreKind)
        async throws
    {
        let fixture = try await ServerFixture.make(kind)
        let a = StreamID.ticket("a")!
        let sam = Actor(id: "sam", role: .agent)
        // sam answers after kim's first message; then the ticket is resolved.
        try await fixture.store.execute(.postMessage(messageID: "m-2", text: "on it", attachments: []), on: a, by: sam)
        try await fixture.store.execute(.changeStatus(to: "resolved", note: nil), on: a, by: sam)
        @Sendable func headers(_ user: String, _ role: Actor.Role) async throws -> HTTPFields {
            ServerFixture.headers(try await ServerFixture.token(user, role))
        }
        try await fixture.app.test(.router) { client in
            // Who could see m-1: acme and kim had joined before it.
            let audience = try await client.execute(
                uri: "/api/chat/tickets/a/messages/m-1/audience", method: .get,
                headers: try await headers("kim", .creator))
            #expect(audience.status == .ok)
            let members = (audience.json?["members"] as? [[String: Any]])?.compactMap { $0["user"] as? String }
            #expect(members == ["acme", "kim"])
            for (uri, user, role) in [
                ("/api/chat/tickets/a/messages/m-1/audience", "jo", Actor.Role.creator),
                ("/api/chat/tickets/a/messages/nope/audience", "kim", .creator),
            ] {
                let response = try await client.execute(uri: uri, method: .get, headers: try await headers(user, role))
                #expect(response.status == .notFound, "\(uri) as \(user)")
            }

            // Analytics: the caller's tickets only, with the response and resolution facts.
            let facts = try await client.execute(
                uri: "/api/analytics/tickets", method: .get, headers: try await headers("sam", .agent))
            let tickets = facts.json?["tickets"] as? [[String: Any]] ?? []
            #expect(tickets.compactMap { $0["channelId"] as? String } == ["ticket-a"])
            #expect((tickets.first?["firstAgentResponseSeconds"] as? Double ?? -1) >= 0)
            #expect(tickets.first?["resolvedAt"] is String && tickets.first?["status"] as? String == "resolved")
            let all = try await client.execute(
                uri: "/api/analytics/tickets", method: .get, headers: try await headers("ada", .admin))
            #expect((all.json?["tickets"] as? [[String: Any]])?.count == 2)

            // Integrity: admins only; the chain verified up to the head.
            let refused = try await client.execute(
                uri: "/api/integrity", method: .get, headers: try await headers("kim", .creator))
            #expect(refused.status == .forbidden)
            let integrity = try await client.execute(
                uri: "/api/integrity", method: .get, headers: try await headers("ada", .admin))
            let verification = integrity.json?["verification"] as? [String: Any]
            #expect(verification?["ok"] as? Bool == true)
            #expect(verification?["headPosition"] as? Int == Int(try await fixture.store.headPosition()))
            #expect(integrity.json?["checkpoint"] == nil, "no checkpoint was signed")
        }
    }
}
