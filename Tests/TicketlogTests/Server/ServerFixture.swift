import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import Ticketlog
@testable import TicketlogServer
@testable import TicketlogStreamChat

/// A log (in memory unless asked otherwise) with ticket `ticket-a` (brand acme, creator kim, agent sam, members acme
/// and kim, one message m-1 by kim) and `ticket-b` (brand other, creator jo, no agent), behind
/// the API's router.
struct ServerFixture {
    static let secret = "test-auth-secret-of-at-least-32-bytes"
    static let streamSecret = "test-stream-secret-of-at-least-32-bytes"
    static let configuration: TicketlogServer.Configuration = {
        var configuration = TicketlogServer.Configuration(
            authSecret: secret, streamAPIKey: "test-key", streamAPISecret: streamSecret, maximumBodySize: 4_096)
        configuration.eventFeedKeepAlive = .milliseconds(300)
        return configuration
    }()

    let store: EventStore
    let app: Application<RouterResponder<TicketlogRequestContext>>
    /// Kept as long as the fixture: the store's file, or its lease on PostgreSQL.
    let directory: TemporaryDirectory

    /// The fixture on a store of `kind` (the API suites that take a kind run on both backends).
    static func make(
        _ kind: StoreKind = .inMemory, logger: Logger = .disabled,
        _ configure: (inout TicketlogServer.Configuration) -> Void = { _ in }
    ) async throws -> ServerFixture {
        let (store, directory) = try await kind.make()
        let a = StreamID.ticket("a")!
        let b = StreamID.ticket("b")!
        let admin = Actor(id: "ada", role: .admin)
        try await store.execute(.open(title: "A", brand: "acme", creator: "kim"), on: a, by: admin)
        try await store.execute(.assign(agent: "sam"), on: a, by: admin)
        try await store.execute(.join(user: "acme", role: .brand), on: a, by: Actor(id: "acme", role: .brand))
        try await store.execute(.join(user: "kim", role: .creator), on: a, by: Actor(id: "kim", role: .creator))
        try await store.execute(
            .postMessage(messageID: "m-1", text: "first", attachments: []), on: a, by: Actor(id: "kim", role: .creator))
        try await store.execute(.open(title: "B", brand: "other", creator: "jo"), on: b, by: admin)
        var configuration = Self.configuration
        configure(&configuration)
        // The server as `ticketlog serve` composes it: with the Stream Chat webhooks mounted.
        let router = try await TicketlogServer.router(
            store: store, configuration: configuration, logger: logger,
            extensions: [StreamChatServerExtension(store: store, apiSecret: configuration.streamAPISecret)])
        return ServerFixture(store: store, app: Application(router: router), directory: directory)
    }

    static func token(_ subject: String, _ role: Actor.Role) async throws -> String {
        try await TicketlogServer.callerToken(subject: subject, role: role, secret: secret)
    }

    static func headers(_ token: String?, json: Bool = true) -> HTTPFields {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json { headers[.contentType] = "application/json" }
        return headers
    }
}

extension TestResponse {
    /// The body as a JSON object.
    var json: [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
    }

    /// `error.code` of an error body.
    var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
}
