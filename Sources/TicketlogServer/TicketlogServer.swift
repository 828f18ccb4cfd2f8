import Foundation
import Hummingbird
import JWTKit
import Logging
import StreamChatSync
import Ticketlog

/// The HTTP API over an ``EventStore``: what a backend or an admin dashboard needs to run ticket
/// conversations (Stream tokens, channels, messages, status, deliverables, audit, replay), with
/// JWT authentication and per-role access.
public enum TicketlogServer {
    /// Where the server listens and what it trusts.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The HS256 secret callers' bearer tokens are signed with (`sub`, `role`, `exp`).
        public var authSecret: String
        /// The Stream app the chat tokens are for.
        public var streamAPIKey: String
        /// The Stream API secret chat tokens are signed with.
        public var streamAPISecret: String
        /// How long a chat token lives (its `exp`); `nil`: tokens that do not expire.
        public var chatTokenLifetime: Duration?
        /// Request bodies larger than this are refused with 413.
        public var maximumBodySize: Int
        /// Per caller: requests per second sustained and in a burst; beyond, 429. `nil`: no limit.
        public var rateLimit: (perSecond: Double, burst: Int)?
        /// How often an idle event feed sends a keep-alive comment (and notices a client that
        /// went away).
        public var eventFeedKeepAlive: Duration = .seconds(15)

        public init(
            host: String = "127.0.0.1", port: Int = 8080, authSecret: String, streamAPIKey: String,
            streamAPISecret: String, chatTokenLifetime: Duration? = .seconds(24 * 3600), maximumBodySize: Int = 64 * 1024,
            rateLimit: (perSecond: Double, burst: Int)? = (perSecond: 20, burst: 100)
        ) {
            self.host = host
            self.port = port
            self.authSecret = authSecret
            self.streamAPIKey = streamAPIKey
            self.streamAPISecret = streamAPISecret
            self.chatTokenLifetime = chatTokenLifetime
            self.maximumBodySize = maximumBodySize
            self.rateLimit = rateLimit
        }
    }

    /// A configuration that cannot work, said plainly.
    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The routes and middleware, without a server: for in-process tests and for embedding in
    /// another Hummingbird application.
    ///
    /// - Throws: ``ConfigurationError`` when a secret is shorter than 32 bytes (HS256 keys must
    ///   be at least as long as the hash).
    public static func router(store: EventStore, configuration: Configuration) async throws -> Router<TicketlogRequestContext> {
        for (name, secret) in [("auth secret", configuration.authSecret), ("Stream API secret", configuration.streamAPISecret)]
        where secret.utf8.count < 32 {
            throw ConfigurationError(description: "the \(name) must be at least 32 bytes long (it is \(secret.utf8.count))")
        }
        let callerKeys = JWTKeyCollection()
        await callerKeys.add(hmac: HMACKey(from: configuration.authSecret), digestAlgorithm: .sha256)
        let chatTokens = await ChatTokenIssuer(configuration: configuration)

        let router = Router(context: TicketlogRequestContext.self)
        let metrics = ServerMetrics()
        // Outside the error middleware, so it sees the status every error ends up with.
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: LogRequestsMiddleware(.info))
        router.add(middleware: BodyLimitMiddleware(maximumBodySize: configuration.maximumBodySize))
        router.get("/healthz") { _, _ in HealthStatus(status: "ok") }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: try await metrics.exposition(store: store))))
        }
        let openAPI = try openAPIDocument()
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: openAPI)))
        }

        WebhookRoutes(
            handler: WebhookHandler(store: store, apiSecret: configuration.streamAPISecret),
            maximumBodySize: max(configuration.maximumBodySize, 1 << 20)
        ).register(on: router)

        let api = router.group("api").add(middleware: AuthMiddleware(keys: callerKeys))
        if let limit = configuration.rateLimit {
            api.add(middleware: RateLimitMiddleware(limiter: RateLimiter(rate: limit.perSecond, burst: limit.burst)))
        }
        ChatRoutes(store: store, chatTokens: chatTokens, streamAPIKey: configuration.streamAPIKey).register(on: api.group("chat"))
        TicketRoutes(store: store).register(on: api.group("chat/tickets"))
        EventFeedRoutes(store: store, keepAlive: configuration.eventFeedKeepAlive).register(on: api)
        return router
    }

    /// A server on `configuration.host:port`. Run it with `runService()`. With `sync`, the
    /// Stream mirror runs beside it as a service and stops with it.
    public static func application(
        store: EventStore, configuration: Configuration, logger: Logger, sync: OutboxDriver? = nil
    ) async throws -> some ApplicationProtocol {
        Application(
            router: try await router(store: store, configuration: configuration),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "ticketlog"),
            services: sync.map { [SyncService(driver: $0)] } ?? [],
            logger: logger)
    }
}

struct HealthStatus: ResponseEncodable {
    var status: String
}

extension TicketlogServer {
    /// The OpenAPI 3.1 document of this API (`Sources/TicketlogServer/Resources/openapi.yaml`),
    /// as served at `/openapi.yaml`.
    public static func openAPIDocument() throws -> Data {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw ConfigurationError(description: "the OpenAPI document is missing from the TicketlogServer bundle")
        }
        return try Data(contentsOf: url)
    }
}
