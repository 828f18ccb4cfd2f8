import Foundation
import Hummingbird
import Ticketlog

/// The request context of every route: who is calling, once the auth middleware checked it.
public struct TicketlogRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller; set for every route under `/api`.
    public var caller: Caller?
    /// When the caller's token expires: a long-lived response (the event feed) ends then.
    public var callerTokenExpiry: Date?
    /// The client's IP address, as the connection says (a proxy's, behind one); `unknown` when
    /// the connection does not say (in-process tests).
    public let clientAddress: String
    /// Set by the body-limit middleware from the configuration.
    public var maxUploadSize: Int = 64 * 1024
    /// The request's id, as Hummingbird logs it; made up when the logger keeps no metadata
    /// (a disabled logger), so responses always carry one. Read once, when the request comes
    /// in: the logger's metadata is a lookup through its handler, and the id is asked for by
    /// several middlewares.
    public let requestID: String

    public init(source: Source) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
        requestID =
            source.logger[metadataKey: "hb.request.id"]?.description
            ?? String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// Responses with sorted keys and plain slashes: stable, diffable output.
    public var responseEncoder: JSONEncoder { CanonicalJSON.encoder() }

    /// The caller, or 401 (only reachable on a route registered outside the auth middleware).
    func requireCaller() throws -> Caller {
        guard let caller else { throw APIError(.unauthorized, code: "unauthorized", "authentication required") }
        return caller
    }
}

/// Applies the configured maximum body size to the request context.
struct BodyLimitMiddleware: RouterMiddleware {
    let maximumBodySize: Int

    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.maxUploadSize = maximumBodySize
        return try await next(request, context)
    }
}
