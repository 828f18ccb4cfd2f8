import ArgumentParser
import Foundation
import Hummingbird
import Logging
import StreamChatSync
import Ticketlog
import TicketlogServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API over a log.",
        discussion: """
            Serves /api/chat/... (JWT bearer auth, roles), /webhooks/stream, /healthz, /metrics, \
            /openapi.yaml. Secrets come from options or the environment: TICKETLOG_AUTH_SECRET \
            (callers' HS256 tokens), STREAM_API_KEY and STREAM_API_SECRET (the Stream app: chat \
            tokens, webhook signatures). Without them the server runs with development secrets \
            and says so; never use those in production.

            When STREAM_API_KEY and STREAM_API_SECRET are set, the server also mirrors the log \
            to Stream (as `ticketlog sync` does), to STREAM_BASE_URL or Stream's default host; \
            --no-sync turns that off.

            On start it prints an admin token for the development secret and a curl line to try.
            """
    )

    static let developmentSecret = "ticketlog-development-secret-change-me"

    @OptionGroup var log: LogOptions

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 8080

    @Option(help: "HS256 secret of callers' tokens (default: $TICKETLOG_AUTH_SECRET).")
    var authSecret: String?

    @Option(help: "Stream API key (default: $STREAM_API_KEY).")
    var streamAPIKey: String?

    @Option(help: "Stream API secret (default: $STREAM_API_SECRET).")
    var streamAPISecret: String?

    @Option(help: "Durability of commits: full or normal.")
    var durability: EventStore.Configuration.Durability = .full

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Stream API base URL for the mirror (default: $STREAM_BASE_URL, else Stream's host).")
    var baseURL: String?

    @Flag(inversion: .prefixedNo, help: "Mirror the log to Stream when Stream credentials are set.")
    var sync = true

    @Option(help: "Requests per second each caller may make, sustained (beyond the burst: 429); 0 turns the limit off.")
    var rateLimit: Double = 20

    @Option(help: "Requests each caller may make at once before the sustained rate applies.")
    var rateBurst: Int = 100

    @Option(help: "Page cache of the writing connection, in MiB: memory grows up to it as the log grows.")
    var cacheMib: Int = 64

    @Option(help: "Page cache of each of the (up to 5) reading connections, in MiB.")
    var readerCacheMib: Int = 2

    @Option(help: ArgumentHelp(
        "How many malloc arenas glibc may keep (M_ARENA_MAX); 0 leaves glibc's own limit, 8 per core.",
        discussion: "Each arena keeps what its threads once used, so more arenas mean resident memory further above the heap in use. MALLOC_ARENA_MAX in the environment wins."))
    var mallocArenas: Int = 2

    func validate() throws {
        if rateLimit < 0 { throw ValidationError("--rate-limit must be 0 (off) or more, not \(rateLimit)") }
        if rateBurst < 1 { throw ValidationError("--rate-burst must be at least 1, not \(rateBurst)") }
        if !(1...4_096).contains(cacheMib) { throw ValidationError("--cache-mib must be 1 to 4096, not \(cacheMib)") }
        if mallocArenas < 0 { throw ValidationError("--malloc-arenas must be 0 (glibc's default) or more, not \(mallocArenas)") }
        if !(1...1_024).contains(readerCacheMib) { throw ValidationError("--reader-cache-mib must be 1 to 1024, not \(readerCacheMib)") }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let secret = authSecret ?? environment["TICKETLOG_AUTH_SECRET"]
        let apiKey = streamAPIKey ?? environment["STREAM_API_KEY"] ?? "development-key"
        let apiSecret = streamAPISecret ?? environment["STREAM_API_SECRET"] ?? Self.developmentSecret
        var logger = Logger(label: "ticketlog")
        logger.logLevel = logLevel
        if mallocArenas > 0, environment["MALLOC_ARENA_MAX"] == nil, !Malloc.limitArenas(to: mallocArenas) {
            logger.debug("malloc arenas not limited: no glibc, or it refused")
        }
        if secret == nil {
            logger.warning("No TICKETLOG_AUTH_SECRET: using the development secret. Do not expose this server.")
        }
        let store = try log.open(create: true) {
            $0.durability = durability
            $0.writerCacheBytes = cacheMib << 20
            $0.readerCacheBytes = readerCacheMib << 20
        }
        let configuration = TicketlogServer.Configuration(
            host: host, port: port, authSecret: secret ?? Self.developmentSecret, streamAPIKey: apiKey,
            streamAPISecret: apiSecret, rateLimit: rateLimit == 0 ? nil : (perSecond: rateLimit, burst: rateBurst))
        let streamConfigured = (streamAPIKey ?? environment["STREAM_API_KEY"]) != nil
            && (streamAPISecret ?? environment["STREAM_API_SECRET"]) != nil
        var driver: OutboxDriver?
        if sync && streamConfigured {
            let client = StreamClient.live(
                baseURL: baseURL ?? environment["STREAM_BASE_URL"] ?? StreamClient.defaultBaseURL,
                auth: StreamAuth(apiKey: apiKey, apiSecret: apiSecret))
            driver = OutboxDriver(store: store, client: client, logger: logger)
            logger.info("Mirroring the log to Stream Chat")
        }
        let app: any ApplicationProtocol
        do {
            app = try await TicketlogServer.application(store: store, configuration: configuration, logger: logger, sync: driver)
        } catch let error as TicketlogServer.ConfigurationError {
            Terminal.error(error.description)
            throw ExitCode(2)
        }
        if secret == nil {
            let token = try await TicketlogServer.callerToken(
                subject: "ada", role: .admin, secret: Self.developmentSecret, lifetime: .seconds(12 * 3600))
            FileHandle.standardOutput.write(Data("""
                ticketlog serving \(log.database) on http://\(host):\(port)
                A development admin token (12 h):
                  export TOKEN=\(token)
                Try:
                  curl -s -H "Authorization: Bearer $TOKEN" http://\(host):\(port)/api/chat/channels
                  curl -s -H "Authorization: Bearer $TOKEN" http://\(host):\(port)/api/chat/tickets/1001/audit

                """.utf8))
        }
        try await app.runService()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
