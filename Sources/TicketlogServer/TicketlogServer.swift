import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import JWTKit
import Logging
import Ticketlog

/// The HTTP API over an `EventStore`: what a backend or an admin dashboard needs to run ticket
/// conversations (Stream tokens, channels, messages, status, deliverables, audit, replay), with
/// JWT authentication and per-role access.
public enum TicketlogServer {
    /// Where the server listens, what it trusts, and how much it lets any one client take.
    public struct Configuration: Sendable {
        /// A sustained rate with a burst allowance (a token bucket).
        public struct RateLimit: Sendable, Equatable {
            public var perSecond: Double
            public var burst: Int

            public init(perSecond: Double, burst: Int) {
                self.perSecond = perSecond
                self.burst = burst
            }

            /// The rates a limiter accepts: 0.001 to 1,000,000 per second, bursts of 1 to 1,000,000.
            public static let rates: ClosedRange<Double> = 0.001...1_000_000
            public static let bursts: ClosedRange<Int> = 1...1_000_000

            /// What is wrong with this limit, in words; `nil` when it is usable.
            public func problem(_ name: String) -> String? {
                guard perSecond.isFinite, Self.rates.contains(perSecond) else {
                    return
                        "\(name) must be from \(Self.rates.lowerBound) to 1000000 requests per second (0 turns it off), not \(perSecond)"
                }
                guard Self.bursts.contains(burst) else {
                    return "\(name)'s burst must be from 1 to 1000000, not \(burst)"
                }
                return nil
            }
        }

        /// How many connections the server holds and how long it waits for each.
        public struct Connections: Sendable, Equatable {
            /// Open connections at most. When a new one would exceed it, the connection that has
            /// waited longest without a request in progress is closed to make room (a slow or
            /// idle client loses its place, not the server its ability to answer); when every
            /// connection is busy, the new one is closed.
            public var maximum = 1_000
            /// From a connection's first byte of a request (or from its opening) to the request's
            /// complete head.
            public var requestHeadTimeout: Duration = .seconds(10)
            /// From a request's head to the end of its body.
            public var requestBodyTimeout: Duration = .seconds(30)
            /// How long a kept-alive connection may wait for its next request.
            public var idleTimeout: Duration = .seconds(75)

            public init() {}
        }

        /// Live event feeds (`GET /api/events`) open at once.
        public struct EventFeeds: Sendable, Equatable {
            public var perCaller = 4
            public var total = 64

            public init() {}
        }

        /// Signing checkpoints of the log (issue 16): the key, and how often.
        public struct Checkpoints: Sendable {
            public var signer: NoteSigner
            /// Sign when this many events were appended since the last checkpoint.
            public var everyEvents: Int64 = 1_000
            /// Sign when this long passed since the last checkpoint and the log grew.
            public var interval: Duration = .seconds(60)

            public init(signer: NoteSigner) {
                self.signer = signer
            }
        }

        public var host: String
        public var port: Int
        /// When set, the server signs checkpoints (``Checkpoints``); `GET /api/checkpoint` serves
        /// the stored ones either way.
        public var checkpoints: Checkpoints?
        /// The HS256 secret callers' bearer tokens are signed with (`sub`, `role`, `exp`).
        public var authSecret: String
        /// The Stream app the chat tokens are for; with ``streamAPISecret``, `nil` turns chat
        /// tokens and webhooks off (503).
        public var streamAPIKey: String?
        /// The Stream API secret: chat tokens are signed with it, webhooks checked against it.
        public var streamAPISecret: String?
        /// The server runs on development secrets (shown in `/healthz`).
        public var development = false
        /// How long a chat token lives (its `exp`); `nil`: tokens that do not expire.
        public var chatTokenLifetime: Duration?
        /// Request bodies larger than this are refused with 413.
        public var maximumBodySize: Int
        /// Per caller (token subject): beyond it, 429. `nil`: no limit.
        public var rateLimit: RateLimit?
        /// Per client address, for what comes without proof of who sent it: requests to
        /// `/healthz`, `/metrics`, `/openapi.yaml` and unknown paths, and each failed
        /// authentication (a bad token, a webhook with a bad signature). Once an address has used
        /// it up, its requests are answered 429 before any token or signature is checked. `nil`:
        /// no limit (behind a proxy every client has the proxy's address).
        public var anonymousRateLimit: RateLimit? = RateLimit(perSecond: 20, burst: 200)
        /// When set, `/metrics` answers only `Authorization: Bearer <this>`.
        public var metricsToken: String?
        public var connections = Connections()
        public var eventFeeds = EventFeeds()
        /// How often an idle event feed sends a keep-alive comment (and notices a client that
        /// went away).
        public var eventFeedKeepAlive: Duration = .seconds(15)
        /// Whether `GET /api/chat/tickets/:id/ws` is served (the server's HTTP/1 channel is then
        /// the one with the WebSocket upgrade, guarded from each connection's accept as the
        /// plain one is); `serve --no-websockets` turns it off.
        public var webSockets = true

        public init(
            host: String = "127.0.0.1", port: Int = 8080, authSecret: String, streamAPIKey: String?,
            streamAPISecret: String?, chatTokenLifetime: Duration? = .seconds(24 * 3600),
            maximumBodySize: Int = 64 * 1024,
            rateLimit: RateLimit? = RateLimit(perSecond: 20, burst: 100)
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

        /// The Stream app's key and secret, when both are configured.
        var stream: (key: String, secret: String)? {
            guard let streamAPIKey, let streamAPISecret else { return nil }
            return (streamAPIKey, streamAPISecret)
        }

        /// Everything that makes this configuration unusable, in words.
        public func problems() -> [String] {
            var problems: [String] = []
            if authSecret.utf8.count < 32 {
                problems.append("the auth secret must be at least 32 bytes long (it is \(authSecret.utf8.count))")
            }
            if let streamAPISecret, streamAPISecret.utf8.count < 32 {
                problems.append(
                    "the Stream API secret must be at least 32 bytes long (it is \(streamAPISecret.utf8.count))")
            }
            if let metricsToken, metricsToken.utf8.count < 16 {
                problems.append("the metrics token must be at least 16 bytes long (it is \(metricsToken.utf8.count))")
            }
            if let problem = rateLimit?.problem("the rate limit") { problems.append(problem) }
            if let problem = anonymousRateLimit?.problem("the anonymous rate limit") { problems.append(problem) }
            if connections.maximum < 1 {
                problems.append("the connection limit must be at least 1, not \(connections.maximum)")
            }
            for (name, timeout) in [
                ("request head timeout", connections.requestHeadTimeout),
                ("request body timeout", connections.requestBodyTimeout),
                ("idle timeout", connections.idleTimeout),
            ] where timeout <= .zero {
                problems.append("the \(name) must be positive")
            }
            if let checkpoints, checkpoints.everyEvents < 1 || checkpoints.interval <= .zero {
                problems.append("checkpoints: sign every 1 or more events, at a positive interval")
            }
            if eventFeeds.perCaller < 1 || eventFeeds.total < eventFeeds.perCaller {
                problems.append("event feeds: at least 1 per caller and no fewer in total than per caller")
            }
            return problems
        }
    }

    /// A configuration that cannot work, said plainly.
    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The routes and middleware, without a server: for in-process tests and for embedding in
    /// another Hummingbird application.
    ///
    /// - Parameters:
    ///   - store: the log the API serves.
    ///   - configuration: secrets, limits and timeouts (``Configuration``).
    ///   - logger: where failed appends, refused webhooks and other events an operator must see
    ///     are logged, and at `info` a line per request answered (method, path, status, time).
    ///   - extensions: parts other modules add (the Stream Chat webhooks: `TicketlogStreamChat`).
    /// - Throws: ``ConfigurationError`` naming every problem of `configuration`
    ///   (``Configuration/problems()``).
    public static func router(
        store: EventStore, configuration: Configuration, logger: Logger = .disabled,
        extensions: [any ServerExtension] = []
    ) async throws -> Router<TicketlogRequestContext> {
        try await routers(
            store: store, configuration: configuration, logger: logger, extensions: extensions, connections: nil
        ).http
    }

    /// The HTTP routes, and the WebSocket routes (upgraded by the server before the HTTP router
    /// sees a request), sharing the caller keys, the feed limits and the callers' rate limit.
    static func routers(
        store: EventStore, configuration: Configuration, logger: Logger, extensions: [any ServerExtension],
        connections: ConnectionGuard?
    ) async throws -> (http: Router<TicketlogRequestContext>, webSocket: Router<TicketlogWebSocketContext>) {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw ConfigurationError(description: problems.joined(separator: "; ")) }
        let callerKeys = JWTKeyCollection()
        await callerKeys.add(hmac: HMACKey(from: configuration.authSecret), digestAlgorithm: .sha256)

        let router = Router(context: TicketlogRequestContext.self)
        let feeds = FeedLimiter(perCaller: configuration.eventFeeds.perCaller, total: configuration.eventFeeds.total)
        let pages = MessagePageCache()
        let metrics = ServerMetrics(connections: connections, feeds: feeds, pages: pages)
        let anonymous = configuration.anonymousRateLimit.map { RateLimiter(rate: $0.perSecond, burst: $0.burst) }
        // Outside the error middleware, so it sees the status every error ends up with.
        router.add(middleware: AnsweredRequestMiddleware(metrics: metrics, logger: logger))
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: RequestMetadataMiddleware())
        router.add(middleware: AnonymousRateLimitMiddleware(limiter: anonymous))
        router.add(middleware: BodyLimitMiddleware(maximumBodySize: configuration.maximumBodySize))
        var status = HealthStatus(configuration: configuration, extensions: extensions)
        status.features["contentEncryption"] = store.sealedFromPosition == nil ? "off" : "on"
        let health = status
        router.get("/healthz") { _, _ in health }
        let metricsToken = configuration.metricsToken
        router.get("/metrics") { request, _ in
            if let metricsToken {
                guard let header = request.headers[.authorization],
                    SecretComparison.equal(header, "Bearer \(metricsToken)")
                else {
                    throw AuthMiddleware.unauthorized("/metrics needs 'Authorization: Bearer <the metrics token>'")
                }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: try await metrics.exposition(store: store))))
        }
        let openAPI = try openAPIDocument()
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: openAPI)))
        }

        try DashboardRoutes().register(on: router)

        let context = ServerExtensionContext(
            logger: logger, maximumBodySize: configuration.maximumBodySize, metrics: metrics)
        for serverExtension in extensions {
            serverExtension.register(on: router, context: context)
        }

        let api = router.group("api").add(middleware: AuthMiddleware(keys: callerKeys))
        let callerLimiter = configuration.rateLimit.map { RateLimiter(rate: $0.perSecond, burst: $0.burst) }
        if let callerLimiter {
            api.add(middleware: RateLimitMiddleware(limiter: callerLimiter))
        }
        var chatTokens: ChatTokenIssuer?
        if let stream = configuration.stream {
            chatTokens = await ChatTokenIssuer(secret: stream.secret, lifetime: configuration.chatTokenLifetime)
        }
        ChatRoutes(store: store, chatTokens: chatTokens, streamAPIKey: configuration.streamAPIKey).register(
            on: api.group("chat"))
        TicketRoutes(store: store, pages: pages).register(on: api.group("chat/tickets"))
        EventFeedRoutes(store: store, keepAlive: configuration.eventFeedKeepAlive, feeds: feeds).register(on: api)
        TransparencyRoutes(store: store, keyID: configuration.checkpoints?.signer.keyID).register(on: api)
        AdminRoutes(store: store, pages: pages).register(on: api)
        InsightRoutes(store: store, facts: FactsCache(), integrity: IntegrityCache()).register(on: api)
        let webSocket = TicketWebSocket(
            store: store, auth: AuthMiddleware(keys: callerKeys), feeds: feeds, posts: callerLimiter
        ).router()
        return (router, webSocket)
    }

    /// A server on `configuration.host:port`. Run it with `runService()`. The extensions' routes
    /// are mounted, and their services (the Stream mirror) run beside the server and stop with it.
    public static func application(
        store: EventStore, configuration: Configuration, logger: Logger, extensions: [any ServerExtension] = []
    ) async throws -> some ApplicationProtocol {
        let connections = ConnectionGuard(configuration.connections, logger: logger)
        let routers = try await routers(
            store: store, configuration: configuration, logger: logger, extensions: extensions,
            connections: connections)
        return Application(
            router: routers.http,
            server: configuration.webSockets
                ? webSocketServer(routers.webSocket, connections: connections)
                : .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuardHandler(connections)])),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "ticketlog"),
            services: extensions.flatMap(\.services)
                + (configuration.checkpoints.map {
                    [CheckpointService(store: store, policy: $0, logger: logger)]
                } ?? []),
            logger: logger)
    }
}

extension TicketlogServer {
    /// HTTP/1 with the WebSocket upgrade, guarded from each connection's accept
    /// (``GuardedWebSocketChannel``) as the plain channel is.
    static func webSocketServer(_ router: Router<TicketlogWebSocketContext>, connections: ConnectionGuard)
        -> HTTPServerBuilder
    {
        let webSocketResponder = router.buildResponder()
        return HTTPServerBuilder { responder in
            GuardedWebSocketChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder, webSocketResponder: webSocketResponder,
                    configuration: .init(
                        http1: .init(additionalChannelHandlers: [ConnectionGuardHandler(connections)]),
                        ws: .init(maxFrameSize: TicketWebSocket.maxMessage))),
                connections: connections)
        }
    }
}

/// `GET /healthz`: up, and what it runs without. A feature left off for want of a secret says so
/// here and on standard error at start, never silently.
struct HealthStatus: ResponseEncodable {
    var status = "ok"
    /// `production`, or `development` when the server runs on the public development secrets.
    var mode: String
    /// `on` or `off` for each feature that needs a secret: `chatTokens` (the Stream API secret),
    /// `metricsToken` (whether `/metrics` needs a token), `checkpointSigning` (a checkpoint key),
    /// `contentEncryption` (the log encrypts personal content: issue 17), and the extensions'
    /// (`webhooks`, `streamChatMirror`).
    var features: [String: String]

    init(configuration: TicketlogServer.Configuration, extensions: [any ServerExtension]) {
        mode = configuration.development ? "development" : "production"
        features = [
            "chatTokens": configuration.stream == nil ? "off" : "on",
            "metricsToken": configuration.metricsToken == nil ? "off" : "on",
            "checkpointSigning": configuration.checkpoints == nil ? "off" : "on",
        ]
        for serverExtension in extensions { features.merge(serverExtension.features) { $1 } }
    }
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
