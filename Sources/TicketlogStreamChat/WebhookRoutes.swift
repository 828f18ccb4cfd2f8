import HTTPTypes
import Hummingbird
import StreamChatSync
import Ticketlog
import TicketlogServer

/// `POST /webhooks/stream`: Stream's webhooks into the log, authenticated by their
/// `X-Signature` (not by a bearer token). Answered 200 unless the signature or body is bad, so
/// Stream retries only what failed; a change refused by the rules is answered 200 too (`refused`,
/// with the reason), since a retry would be refused again. Without a Stream API secret the
/// endpoint answers 503: there is nothing to check a signature with. Here, and only here, the
/// sync's outcomes and errors become HTTP statuses.
struct WebhookRoutes {
    let handler: WebhookHandler?
    /// Webhook bodies carry up to 50 members; allow more than API requests.
    let maximumBodySize: Int

    struct Acknowledgement: ResponseEncodable {
        var result: String
        var positions: [Int64]?
        var reason: String?
    }

    func register(on router: Router<TicketlogRequestContext>) {
        router.post("/webhooks/stream") { request, context in
            guard let handler else {
                throw APIError(
                    .serviceUnavailable, code: "stream_not_configured",
                    "webhooks are off: this server has no Stream API secret to check their signatures with (see /healthz)"
                )
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: maximumBodySize)
            } catch {
                throw APIError(
                    .contentTooLarge, code: "too_large", "the webhook body is larger than \(maximumBodySize) bytes")
            }
            let outcome = try await handler.handle(
                body: Array(buffer: body), signature: request.headers[HTTPField.Name("X-Signature")!],
                webhookID: request.headers[HTTPField.Name("X-Webhook-Id")!])
            switch outcome {
            case .appended(let positions, let alreadyStored):
                return Acknowledgement(result: alreadyStored ? "duplicate" : "appended", positions: Array(positions))
            case .ignored(let reason):
                return Acknowledgement(result: "ignored", reason: reason)
            case .refused(let reason):
                return Acknowledgement(result: "refused", reason: reason)
            case .rejected(let rejection):
                switch rejection {
                case .missingSignature, .badSignature:
                    throw APIError(.unauthorized, code: "unauthorized", rejection.reason)
                case .unreadable:
                    throw APIError(.badRequest, code: "bad_request", rejection.reason)
                }
            }
        }
    }
}
