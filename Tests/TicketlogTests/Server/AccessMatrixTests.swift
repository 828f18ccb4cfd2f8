import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// Every role against every ticket endpoint, on their own ticket and on someone else's. Someone
/// else's ticket answers exactly as a ticket that does not exist (404), so ids cannot be probed.
@Suite(.timeLimit(.minutes(10))) struct AccessMatrixTests {
    enum Who: String, CaseIterable, CustomTestStringConvertible {
        case admin, assignedAgent, otherAgent, ownBrand, otherBrand, ownCreator, otherCreator

        var caller: (String, Actor.Role) {
            switch self {
            case .admin: ("ada", .admin)
            case .assignedAgent: ("sam", .agent)
            case .otherAgent: ("lee", .agent)
            case .ownBrand: ("acme", .brand)
            case .otherBrand: ("other", .brand)
            case .ownCreator: ("kim", .creator)
            case .otherCreator: ("jo", .creator)
            }
        }

        /// Whether ticket-a is theirs to read and write.
        var ownsTicketA: Bool { [.admin, .assignedAgent, .ownBrand, .ownCreator].contains(self) }
        var testDescription: String { rawValue }
    }

    struct Endpoint: CustomTestStringConvertible, Sendable {
        var method: HTTPRequest.Method
        var path: String
        var body: String?
        /// Only admins, whoever owns the ticket.
        var adminOnly = false
        var testDescription: String { "\(method) \(path)" }
    }

    static let endpoints: [Endpoint] = [
        Endpoint(method: .post, path: "/api/chat/tickets/a/join", body: nil),
        Endpoint(method: .post, path: "/api/chat/tickets/a/leave", body: nil),
        Endpoint(method: .get, path: "/api/chat/channels/ticket-a", body: nil),
        Endpoint(method: .get, path: "/api/chat/tickets/a/messages", body: nil),
        Endpoint(method: .post, path: "/api/chat/tickets/a/messages", body: #"{"text":"hi"}"#),
        Endpoint(method: .patch, path: "/api/chat/tickets/a/messages/m-1", body: #"{"text":"edited"}"#),
        Endpoint(method: .delete, path: "/api/chat/tickets/a/messages/m-1", body: nil),
        Endpoint(method: .post, path: "/api/chat/tickets/a/status", body: #"{"status":"in_progress"}"#),
        Endpoint(
            method: .post, path: "/api/chat/tickets/a/deliverables",
            body: #"{"title":"Cut","url":"https://x.example/c.mp4","kind":"video"}"#),
        Endpoint(method: .get, path: "/api/chat/tickets/a/audit", body: nil),
        Endpoint(method: .get, path: "/api/chat/tickets/a/state?at=3", body: nil),
        Endpoint(method: .post, path: "/api/chat/tickets/a/assign", body: #"{"agent":"lee"}"#, adminOnly: true),
    ]

    /// Every endpoint on each kind of store: a file's access checks read through connections of
    /// their own (`EventStore.pointRead`), the others' through the pool or PostgreSQL.
    static let endpointsOnEachBackend: [(Endpoint, StoreKind)] = StoreKind.allCases.flatMap { kind in
        endpoints.map { ($0, kind) }
    }

    @Test(arguments: Who.allCases, endpointsOnEachBackend)
    func accessFollowsRoleAndOwnership(_ who: Who, _ case: (endpoint: Endpoint, kind: StoreKind)) async throws {
        let endpoint = `case`.endpoint
        let fixture = try await ServerFixture.make(`case`.kind)
        let token = try await ServerFixture.token(who.caller.0, who.caller.1)
        let before = try await fixture.store.headPosition()
        let allowed = endpoint.adminOnly ? who == .admin : who.ownsTicketA
        // Allowed into the ticket, but only the author edits and brands do not delete.
        let rejected =
            allowed && endpoint.path.hasSuffix("/messages/m-1")
            && ((endpoint.method == .patch && who != .ownCreator) || (endpoint.method == .delete && who == .ownBrand))
        try await fixture.app.test(.router) { client in
            let response = try await client.execute(
                uri: endpoint.path, method: endpoint.method, headers: ServerFixture.headers(token),
                body: endpoint.body.map { ByteBuffer(string: $0) })
            if !allowed && endpoint.adminOnly {
                #expect(response.status == .forbidden, "\(String(buffer: response.body))")
                #expect(response.errorCode == "forbidden")
            } else if !allowed {
                #expect(response.status == .notFound, "\(String(buffer: response.body))")
                #expect(response.errorCode == "not_found")
                // The same request about a ticket that does not exist gets the same answer.
                let missing = try await client.execute(
                    uri: endpoint.path.replacingOccurrences(of: "/a/", with: "/zz/").replacingOccurrences(
                        of: "ticket-a", with: "ticket-zz"),
                    method: endpoint.method, headers: ServerFixture.headers(token),
                    body: endpoint.body.map { ByteBuffer(string: $0) })
                #expect(missing.status == .notFound)
                #expect(
                    String(buffer: missing.body).replacingOccurrences(of: "ticket-zz", with: "ticket-a")
                        == String(buffer: response.body),
                    "someone else's ticket must look like one that does not exist")
            } else if rejected {
                #expect(response.status == .unprocessableContent, "\(String(buffer: response.body))")
                #expect(response.errorCode == "rejected")
            } else {
                #expect((200..<300).contains(response.status.code), "\(String(buffer: response.body))")
            }
        }
        if !allowed || rejected {
            #expect(try await fixture.store.headPosition() == before, "a refused request appends nothing")
        }
    }

    @Test(arguments: Who.allCases, StoreKind.backends)
    func channelListsShowOnlyOwnTickets(_ who: Who, _ kind: StoreKind) async throws {
        let fixture = try await ServerFixture.make(kind)
        let token = try await ServerFixture.token(who.caller.0, who.caller.1)
        try await fixture.app.test(.router) { client in
            let response = try await client.execute(
                uri: "/api/chat/channels", method: .get, headers: ServerFixture.headers(token))
            #expect(response.status == .ok)
            let channels =
                (response.json?["channels"] as? [[String: Any]])?.compactMap { $0["channelId"] as? String } ?? []
            let expected: Set<String> =
                switch who {
                case .admin: ["ticket-a", "ticket-b"]
                case .assignedAgent, .ownBrand, .ownCreator: ["ticket-a"]
                case .otherBrand, .otherCreator: ["ticket-b"]
                case .otherAgent: []
                }
            #expect(Set(channels) == expected)
        }
    }

    @Test(arguments: Who.allCases, StoreKind.backends)
    func onlyAdminsAndTheBrandItselfOpenTickets(_ who: Who, _ kind: StoreKind) async throws {
        let fixture = try await ServerFixture.make(kind)
        let token = try await ServerFixture.token(who.caller.0, who.caller.1)
        try await fixture.app.test(.router) { client in
            let response = try await client.execute(
                uri: "/api/chat/tickets", method: .post, headers: ServerFixture.headers(token),
                body: ByteBuffer(string: #"{"ticketId":"n1","title":"New","brand":"acme","creator":"kim"}"#))
            if who == .admin || who == .ownBrand {
                #expect(response.status == .created)
                #expect(response.json?["channelId"] as? String == "ticket-n1")
            } else {
                #expect(response.status == .forbidden)
            }
        }
    }
}
