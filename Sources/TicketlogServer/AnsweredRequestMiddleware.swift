import Hummingbird
import Logging

/// Times every request and records it once answered, from the one measurement:
/// - in the metrics, under its route pattern (not the raw path, so ticket ids do not explode the
///   label space);
/// - at `info`, as the access line an operator expects: method, path (never the query, which may
///   hold a feed's token), status and time taken, with the request's id (`ticketlog.request`,
///   the response's `X-Request-Id`).
///
/// Outside the error middleware, which turns every error into an HTTP one: a refused request is
/// recorded with the status its caller got.
struct AnsweredRequestMiddleware: RouterMiddleware {
    let metrics: ServerMetrics
    let logger: Logger

    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: Int(response.status.code), duration: .now - start)
            return response
        } catch let error as HTTPResponseError {
            record(request, context, status: Int(error.status.code), duration: .now - start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: TicketlogRequestContext, status: Int, duration: Duration) {
        metrics.record(
            method: request.method, route: context.endpointPath ?? "unmatched", status: status, duration: duration)
        guard logger.logLevel <= .info else { return }
        logger.info(
            "\(request.method) \(request.uri.path) \(status) \(Self.milliseconds(duration))",
            metadata: ["ticketlog.request": .string(context.requestID)])
    }

    /// `12.3 ms`, without a formatter.
    static func milliseconds(_ duration: Duration) -> String {
        let microseconds = max(
            0, duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        return "\(microseconds / 1_000).\(microseconds % 1_000 / 100) ms"
    }
}
