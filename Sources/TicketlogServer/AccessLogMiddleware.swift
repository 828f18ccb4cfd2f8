import Hummingbird
import Logging

/// One line per request once it is answered: method, path (never the query, which may hold a
/// feed's token), status and time taken, with the request's id (`ticketlog.request`, the
/// response's `X-Request-Id`). At `info`: what an operator's access log holds. Outside the
/// error middleware, which turns every error into an HTTP one: a refused request's line has the
/// status its caller got.
struct AccessLogMiddleware: RouterMiddleware {
    let logger: Logger

    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        guard logger.logLevel <= .info else { return try await next(request, context) }
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, context, status: response.status.code, since: start)
            return response
        } catch let error as HTTPResponseError {
            log(request, context, status: error.status.code, since: start)
            throw error
        } catch {
            log(request, context, status: 500, since: start)
            throw error
        }
    }

    private func log(
        _ request: Request, _ context: TicketlogRequestContext, status: Int, since start: ContinuousClock.Instant
    ) {
        logger.info(
            "\(request.method) \(request.uri.path) \(status) \(Self.milliseconds(since: start))",
            metadata: ["ticketlog.request": .string(context.requestID)])
    }

    /// `12.3 ms`, without a formatter.
    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        let microseconds = max(
            0, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
        return "\(microseconds / 1_000).\(microseconds % 1_000 / 100) ms"
    }
}
