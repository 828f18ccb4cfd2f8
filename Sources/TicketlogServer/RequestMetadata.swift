import Hummingbird
import Logging

/// The request being handled, for every log line written while handling it — the store's and the
/// sync's as well as the server's, though they know nothing of requests: a task-local value that
/// the process's logging reads through ``TicketlogServer/requestMetadataProvider``.
public enum RequestMetadata {
    /// The id of the request the current task handles (the `X-Request-Id` of its response).
    @TaskLocal public static var requestID: String?
}

extension TicketlogServer {
    /// Adds `ticketlog.request` (the request id) to log lines written while a request is handled.
    /// Pass it to `LoggingSystem.bootstrap(_:metadataProvider:)` (`ticketlog serve` does).
    public static let requestMetadataProvider = Logger.MetadataProvider {
        RequestMetadata.requestID.map { ["ticketlog.request": .string($0)] } ?? [:]
    }
}

/// Sets ``RequestMetadata/requestID`` for the rest of the request's handling.
struct RequestMetadataMiddleware: RouterMiddleware {
    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        try await RequestMetadata.$requestID.withValue(context.requestID) {
            try await next(request, context)
        }
    }
}
