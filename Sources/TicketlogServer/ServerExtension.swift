import Hummingbird
import Logging
import ServiceLifecycle

/// A part of the server another module provides — the Stream Chat webhooks and mirror
/// (`TicketlogStreamChat`) — so that the server itself knows nothing of it. The composition root
/// (the `ticketlog` CLI, or an embedding app) decides which extensions a server has.
public protocol ServerExtension: Sendable {
    /// Adds the extension's routes. They sit outside `/api` and its bearer-token check: an
    /// extension authenticates its own requests (a webhook by its signature). Errors thrown as
    /// ``APIError`` are answered as every other error.
    func register(on router: Router<TicketlogRequestContext>, context: ServerExtensionContext)

    /// Services that run beside the server and stop with it.
    var services: [any Service] { get }

    /// What `/healthz` reports of it: feature name → `on` or `off`.
    var features: [String: String] { get }
}

/// What the server lends its extensions.
public struct ServerExtensionContext: Sendable {
    /// The server's logger, for what operators must see.
    public let logger: Logger
    /// The largest request body the server accepts on its own routes.
    public let maximumBodySize: Int
    let metrics: ServerMetrics

    /// Adds one to the counter `label` in `/metrics` (a Prometheus counter; keep `dimensions`
    /// to a small, fixed set of values).
    public func count(_ label: String, dimensions: [(String, String)] = []) {
        metrics.count(label, dimensions: dimensions)
    }
}
