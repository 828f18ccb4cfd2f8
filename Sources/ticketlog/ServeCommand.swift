import ArgumentParser
import Foundation
import Hummingbird
import Logging
import StreamChatSync
import Ticketlog
import TicketlogServer
import TicketlogStreamChat

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API over a log.",
        discussion: """
            Serves /api/chat/... (JWT bearer auth, roles), /webhooks/stream, /healthz, /metrics, \
            /openapi.yaml.

            Secrets come from the environment or from files, never from the command line (where \
            ps shows them): TICKETLOG_AUTH_SECRET or --auth-secret-file (callers' HS256 tokens; \
            required), STREAM_API_KEY and STREAM_API_SECRET or --stream-api-secret-file (the \
            Stream app: chat tokens, webhook signatures, the mirror), TICKETLOG_METRICS_TOKEN or \
            --metrics-token-file (then /metrics needs it as a bearer token). Without an auth \
            secret the server refuses to start; without the Stream secret, chat tokens and \
            webhooks are off (503), as stderr and /healthz say.

            --development runs on the public development secrets instead, for trying things on \
            your own machine: anyone can mint an admin token for such a server. It prints an \
            admin token and curl lines to try.

            When STREAM_API_KEY and STREAM_API_SECRET are set, the server also mirrors the log \
            to Stream (as `ticketlog sync` does), to STREAM_BASE_URL or Stream's default host; \
            --no-sync turns that off.

            Limits: requests per caller (--rate-limit), unauthenticated requests and failed \
            authentications per client address (--anonymous-rate-limit), open connections \
            (--max-connections, at most the file limit less 64), deadlines for a request's head \
            and body and for idle connections, event feeds per caller and in total.
            """
    )

    @OptionGroup var log: LogOptions

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 8080

    @Flag(help: "Use the public development secrets for every secret not set. Never on a server others can reach.")
    var development = false

    @Option(
        help: ArgumentHelp(
            "A file holding the HS256 secret of callers' tokens (default: $TICKETLOG_AUTH_SECRET).", valueName: "path"))
    var authSecretFile: String?

    @OptionGroup var stream: StreamOptions

    @Option(
        help: ArgumentHelp(
            "A file holding the token /metrics requires as 'Authorization: Bearer' (default: $TICKETLOG_METRICS_TOKEN; none: /metrics is public).",
            valueName: "path"))
    var metricsTokenFile: String?

    @Option(help: "Durability of commits: full or normal.")
    var durability: EventStore.Configuration.Durability = .full

    @Option(
        help:
            "Log level: trace, debug, info, notice, warning, error, critical. At info (the default) a line per request answered: method, path, status, time."
    )
    var logLevel: Logger.Level = .info

    @Flag(inversion: .prefixedNo, help: "Mirror the log to Stream when Stream credentials are set.")
    var sync = true

    @Option(help: "Requests per second each caller may make, sustained (beyond the burst: 429); 0 turns the limit off.")
    var rateLimit: Double = 20

    @Option(help: "Requests each caller may make at once before the sustained rate applies.")
    var rateBurst: Int = 100

    @Option(
        help:
            "Unauthenticated requests and failed authentications per second per client address; 0 turns the limit off (e.g. behind a proxy)."
    )
    var anonymousRateLimit: Double = 20

    @Option(help: "Unauthenticated requests and failed authentications a client address may make at once.")
    var anonymousRateBurst: Int = 200

    @Option(help: "Open connections at most (also capped at the process's file limit less 64).")
    var maxConnections: Int = 1_000

    @Option(help: "Seconds a client has to send a request's head, from its first byte.")
    var requestHeadTimeout: Double = 10

    @Option(help: "Seconds a client has to send a request's body, from its head.")
    var requestBodyTimeout: Double = 30

    @Option(help: "Seconds a kept-alive connection may wait for its next request.")
    var idleTimeout: Double = 75

    @Option(help: "Event feeds (GET /api/events) one caller may have open at once.")
    var feedsPerCaller: Int = 4

    @Option(help: "Event feeds the server keeps open at once.")
    var feedsTotal: Int = 64

    @Flag(
        inversion: .prefixedNo,
        help: "Serve GET /api/chat/tickets/:id/ws: a ticket's events and posting on one WebSocket.")
    var websockets = true

    @Option(help: "Page cache of the writing connection, in MiB: memory grows up to it as the log grows.")
    var cacheMib: Int = 32

    @Option(help: "Page cache of each of the (up to 5) reading connections, in MiB.")
    var readerCacheMib: Int = 2

    @Option(
        help: ArgumentHelp(
            "How many malloc arenas glibc may keep (M_ARENA_MAX); 0 leaves glibc's own limit, 8 per core.",
            discussion:
                "Each arena keeps what its threads once used, so more arenas mean resident memory further above the heap in use. MALLOC_ARENA_MAX in the environment wins."
        ))
    var mallocArenas: Int = 2

    @Option(
        help: ArgumentHelp(
            "A signer key file (ticketlog keygen): sign checkpoints of the log as it grows.",
            discussion:
                "Served at GET /api/checkpoint; the key must not be readable by other users and is never written into the log."
        ))
    var checkpointKey: String?

    @Option(help: "With --checkpoint-key: sign when this many events were appended since the last checkpoint.")
    var checkpointEvery: Int64 = 1_000

    @Option(
        help: "With --checkpoint-key: sign when this many seconds passed since the last checkpoint and the log grew.")
    var checkpointInterval: Double = 60

    func validate() throws {
        if !(1...100_000_000).contains(checkpointEvery) {
            throw ValidationError("--checkpoint-every must be 1 to 100000000 events, not \(checkpointEvery)")
        }
        if !(checkpointInterval.isFinite && checkpointInterval >= 0.1 && checkpointInterval <= 86_400) {
            throw ValidationError("--checkpoint-interval must be from 0.1 to 86400 seconds, not \(checkpointInterval)")
        }
        for (option, burst) in [("--rate-burst", rateBurst), ("--anonymous-rate-burst", anonymousRateBurst)]
        where !TicketlogServer.Configuration.RateLimit.bursts.contains(burst) {
            throw ValidationError("\(option) must be from 1 to 1000000, not \(burst)")
        }
        for (option, rate, burst) in [
            ("--rate-limit", rateLimit, rateBurst), ("--anonymous-rate-limit", anonymousRateLimit, anonymousRateBurst),
        ]
        where rate != 0 {
            if let problem = TicketlogServer.Configuration.RateLimit(perSecond: rate, burst: burst).problem(option) {
                throw ValidationError(problem)
            }
        }
        if !(1...1_000_000).contains(maxConnections) {
            throw ValidationError("--max-connections must be 1 to 1000000, not \(maxConnections)")
        }
        for (option, seconds) in [
            ("--request-head-timeout", requestHeadTimeout), ("--request-body-timeout", requestBodyTimeout),
            ("--idle-timeout", idleTimeout),
        ] where !(seconds.isFinite && seconds >= 0.1 && seconds <= 86_400) {
            throw ValidationError("\(option) must be from 0.1 to 86400 seconds, not \(seconds)")
        }
        if !(1...10_000).contains(feedsPerCaller) {
            throw ValidationError("--feeds-per-caller must be 1 to 10000, not \(feedsPerCaller)")
        }
        if !(feedsPerCaller...100_000).contains(feedsTotal) {
            throw ValidationError(
                "--feeds-total must be from --feeds-per-caller (\(feedsPerCaller)) to 100000, not \(feedsTotal)")
        }
        if !(1...4_096).contains(cacheMib) { throw ValidationError("--cache-mib must be 1 to 4096, not \(cacheMib)") }
        if mallocArenas < 0 {
            throw ValidationError("--malloc-arenas must be 0 (glibc's default) or more, not \(mallocArenas)")
        }
        if !(1...1_024).contains(readerCacheMib) {
            throw ValidationError("--reader-cache-mib must be 1 to 1024, not \(readerCacheMib)")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let logger = Logger.process(label: "ticketlog", level: logLevel)
        if mallocArenas > 0, environment["MALLOC_ARENA_MAX"] == nil, !Malloc.limitArenas(to: mallocArenas) {
            logger.debug("malloc arenas not limited: no glibc, or it refused")
        }

        // Secrets: none has a silent default.
        let authSecret = try Secrets.read(
            file: authSecretFile, option: "--auth-secret-file", variable: "TICKETLOG_AUTH_SECRET")
        let streamCredentials = try stream.credentials()
        let metricsToken = try Secrets.read(
            file: metricsTokenFile, option: "--metrics-token-file", variable: "TICKETLOG_METRICS_TOKEN")
        if authSecret == nil && !development {
            Terminal.error(
                """
                no secret for callers' tokens: set TICKETLOG_AUTH_SECRET (at least 32 bytes) or --auth-secret-file, \
                or run with --development to use the public development secret on your own machine
                """)
            throw ExitCode(2)
        }
        if development {
            Terminal.error(
                """
                DEVELOPMENT MODE: \(authSecret == nil ? "callers' tokens are checked with the PUBLIC development secret (anyone can mint an admin token)" : "callers' tokens use your secret")\
                \(streamCredentials == nil ? "; chat tokens and webhook signatures use the PUBLIC development Stream secret (anyone can forge a webhook)" : ""). \
                Never run this on a server others can reach.
                """)
            if !["127.0.0.1", "::1", "localhost"].contains(host) {
                Terminal.error(
                    "WARNING: development mode listening on \(host), not on loopback: other machines can reach this server"
                )
            }
        } else if streamCredentials == nil {
            Terminal.error(
                "note: no STREAM_API_KEY and STREAM_API_SECRET: chat tokens and Stream webhooks are off (503), and nothing is mirrored"
            )
        }
        if metricsToken == nil {
            logger.info("/metrics is public (set TICKETLOG_METRICS_TOKEN or --metrics-token-file to require a token)")
        }

        var configuration = TicketlogServer.Configuration(
            host: host, port: port, authSecret: authSecret ?? Secrets.developmentAuthSecret,
            streamAPIKey: streamCredentials?.key ?? (development ? Secrets.developmentStreamAPIKey : nil),
            streamAPISecret: streamCredentials?.secret ?? (development ? Secrets.developmentStreamAPISecret : nil),
            rateLimit: rateLimit == 0 ? nil : .init(perSecond: rateLimit, burst: rateBurst))
        configuration.development = development
        configuration.anonymousRateLimit =
            anonymousRateLimit == 0 ? nil : .init(perSecond: anonymousRateLimit, burst: anonymousRateBurst)
        configuration.metricsToken = metricsToken
        configuration.connections.maximum = maxConnections
        if let fileLimit = Self.openFileLimit(), fileLimit - 64 < maxConnections {
            configuration.connections.maximum = max(1, fileLimit - 64)
            logger.notice(
                "At most \(configuration.connections.maximum) connections: the process may open \(fileLimit) files (ulimit -n)"
            )
        }
        configuration.connections.requestHeadTimeout = .seconds(requestHeadTimeout)
        configuration.connections.requestBodyTimeout = .seconds(requestBodyTimeout)
        configuration.connections.idleTimeout = .seconds(idleTimeout)
        configuration.eventFeeds.perCaller = feedsPerCaller
        configuration.eventFeeds.total = feedsTotal
        configuration.webSockets = websockets
        if let checkpointKey {
            var checkpoints = TicketlogServer.Configuration.Checkpoints(signer: try ProofFiles.signer(checkpointKey))
            checkpoints.everyEvents = checkpointEvery
            checkpoints.interval = .seconds(checkpointInterval)
            configuration.checkpoints = checkpoints
            logger.info(
                "Signing checkpoints every \(checkpointEvery) events or \(checkpointInterval) s",
                metadata: ["ticketlog.origin": "\(checkpoints.signer.name)"])
        }
        let problems = configuration.problems()
        guard problems.isEmpty else {
            for problem in problems { Terminal.error(problem) }
            throw ExitCode(2)
        }

        let store = try await log.openOnEitherBackend(create: true, logger: logger) {
            $0.durability = durability
            $0.writerCacheBytes = cacheMib << 20
            $0.readerCacheBytes = readerCacheMib << 20
        }
        var driver: OutboxDriver?
        if sync, let streamCredentials {
            let client = StreamChatClient.live(
                baseURL: stream.resolvedBaseURL,
                auth: StreamChatAuth(apiKey: streamCredentials.key, apiSecret: streamCredentials.secret))
            driver = OutboxDriver(store: store, client: client, logger: logger)
            logger.info("Mirroring the log to Stream Chat")
        }
        let app: any ApplicationProtocol
        do {
            app = try await TicketlogServer.application(
                store: store, configuration: configuration, logger: logger,
                extensions: [
                    StreamChatServerExtension(store: store, apiSecret: configuration.streamAPISecret, mirror: driver)
                ])
        } catch let error as TicketlogServer.ConfigurationError {
            Terminal.error(error.description)
            throw ExitCode(2)
        }
        if development && authSecret == nil {
            func mint(_ subject: String, _ role: Actor.Role) async throws -> String {
                try await TicketlogServer.callerToken(
                    subject: subject, role: role, secret: Secrets.developmentAuthSecret,
                    lifetime: .seconds(12 * 3600))
            }
            let token = try await mint("ada", .admin)
            // The sample ticket's other people (`ticketlog demo`): each role sees its own tickets.
            var others = ""
            for (subject, role) in [("sam", Actor.Role.agent), ("kim", .creator), ("acme", .brand)] {
                others += "  \(subject) (\(role.rawValue)): \(try await mint(subject, role))\n"
            }
            FileHandle.standardOutput.write(
                Data(
                    """
                    ticketlog serving \(log.displayName) on http://\(host):\(port) (development mode)
                    A development admin token (12 h):
                      export TOKEN=\(token)
                    The dashboard: open http://\(host):\(port)/ and sign in with that token.
                    The sample ticket's agent, creator and brand, to see what each role sees:
                    \(others)\
                    Try:
                      curl -s -H "Authorization: Bearer $TOKEN" http://\(host):\(port)/api/chat/channels
                      curl -s -H "Authorization: Bearer $TOKEN" http://\(host):\(port)/api/chat/tickets/1001/audit

                    """.utf8))
        }
        try await app.runService()
    }

    /// The process's soft limit on open files (`ulimit -n`), when it has one.
    static func openFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_cur)
    }
}

// swift-format-ignore: AvoidRetroactiveConformances
// The log level is an option of `serve` and `sync`; swift-log's type is the one to parse into,
// and neither package will ever declare this conformance itself.
extension Logger.Level: @retroactive ExpressibleByArgument {}
