import Hummingbird
import ServiceLifecycle
import StreamChatSync
import Ticketlog
import TicketlogServer

/// Stream Chat in `ticketlog serve`: the webhook endpoint (`POST /webhooks/stream`) and the
/// outbound mirror as a service beside the server. The server knows nothing of Stream; the
/// composition root mounts this:
///
/// ```swift
/// let streamChat = StreamChatServerExtension(
///     store: store, apiSecret: secret, mirror: OutboxDriver(store: store, client: client, logger: logger))
/// let app = try await TicketlogServer.application(
///     store: store, configuration: configuration, logger: logger, extensions: [streamChat])
/// ```
public struct StreamChatServerExtension: ServerExtension {
    let store: EventStore
    let apiSecret: String?
    let mirror: OutboxDriver?

    /// - Parameters:
    ///   - store: the log the webhooks go into and the mirror reads.
    ///   - apiSecret: the Stream API secret webhooks are signed with; `nil`: the endpoint answers
    ///     503 (there is nothing to check a signature with).
    ///   - mirror: the outbound mirror to run beside the server, if any.
    public init(store: EventStore, apiSecret: String?, mirror: OutboxDriver? = nil) {
        self.store = store
        self.apiSecret = apiSecret
        self.mirror = mirror
    }

    /// Refused changes from Stream, by webhook type, in `/metrics`.
    public static let refusedCounter = "ticketlog_stream_chat_webhooks_refused_total"

    public func register(on router: Router<TicketlogRequestContext>, context: ServerExtensionContext) {
        let handler = apiSecret.map { secret in
            WebhookHandler(store: store, apiSecret: secret, logger: context.logger) { refusal in
                context.count(Self.refusedCounter, dimensions: [("type", refusal.type)])
            }
        }
        WebhookRoutes(handler: handler, maximumBodySize: max(context.maximumBodySize, 1 << 20)).register(on: router)
    }

    public var services: [any Service] {
        mirror.map { [MirrorService(driver: $0)] } ?? []
    }

    public var features: [String: String] {
        ["webhooks": apiSecret == nil ? "off" : "on", "streamChatMirror": mirror == nil ? "off" : "on"]
    }
}

/// The Stream mirror as a service of the server: runs until the server shuts down, in one
/// server at a time among those sharing a log on PostgreSQL (`EventStore.whileLeading(_:_:)`:
/// another takes over from the durable cursor when it dies).
struct MirrorService: Service {
    let driver: OutboxDriver

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await driver.runWhileLeading()
        }
    }
}
