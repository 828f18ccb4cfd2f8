import Foundation
import HTTPTypes
import Hummingbird
import Ticketlog

/// An error answered as `{"error": {"code": ..., "message": ...}}` with its HTTP status: the one
/// place errors meet HTTP, for the server's routes and its extensions'.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The status for each kind of store error; the only place they meet HTTP.
    init(_ error: EventStoreError) {
        let status: HTTPResponse.Status =
            switch error.code {
            case .versionConflict, .duplicateEventID: .conflict
            case .invalidEvent: .badRequest
            case .notFound: .notFound
            case .rejected: .unprocessableContent
            // `masterKey`: this process may not write the log any more (another one encrypted it,
            // or rotated its key) until it is restarted; another node may serve the request.
            case .storageFailure, .corruptRecord, .unknownFormat, .masterKey: .serviceUnavailable
            case .unsupported: .notImplemented
            default: .internalServerError
            }
        let message = status == .serviceUnavailable ? "the event log is unavailable; try again later" : error.message
        // A storage failure is passing (a database restarting, a full disk being freed): the
        // client may retry soon. A damaged log is not, so it gets no retry hint.
        let headers: HTTPFields = error.code == .storageFailure ? [.retryAfter: "1"] : [:]
        self.init(status, code: error.code.description, message, headers: headers)
    }

    /// `{"error": {"code", "message"}}`
    private struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
        }
        var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try CanonicalJSON.encoder().encode(Body(error: .init(code: code, message: message)))
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error into the JSON error shape: API errors as they are, store errors by
/// category, Hummingbird's own (unknown route, body too large) with their status, anything
/// else as a 500 that is logged and says nothing about internals. Every response, error or
/// not, carries the request's id in `X-Request-Id`, as the logs do.
struct ErrorMiddleware: RouterMiddleware {
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    func handle(
        _ request: Request, context: TicketlogRequestContext,
        next: (Request, TicketlogRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            var response = try await next(request, context)
            response.headers[Self.requestIDHeader] = context.requestID
            return response
        } catch {
            var apiError = Self.apiError(error, request: request, context: context)
            apiError.headers[Self.requestIDHeader] = context.requestID
            throw apiError
        }
    }

    private static func apiError(_ error: any Error, request: Request, context: TicketlogRequestContext) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as EventStoreError:
            if APIError(error).status == .serviceUnavailable {
                context.logger.error("Storage failure", metadata: ["ticketlog.error": "\(error)"])
            }
            return APIError(error)
        case let error as HTTPError:
            let code =
                switch error.status {
                case .notFound: "not_found"
                case .contentTooLarge: "too_large"
                case .badRequest: "bad_request"
                case .methodNotAllowed: "method_not_allowed"
                default: "http_\(error.status.code)"
                }
            let message =
                error.status == .notFound
                ? "no such endpoint: \(request.method) \(request.uri.path)" : (error.body ?? error.status.reasonPhrase)
            return APIError(error.status, code: code, message, headers: error.headers)
        default:
            context.logger.error("Unhandled error", metadata: ["ticketlog.error": "\(error)"])
            return APIError(.internalServerError, code: "internal", "internal error (request \(context.requestID))")
        }
    }
}

extension Request {
    /// The JSON body decoded as `T`: 413 when larger than the context allows, 400 with the
    /// offending field when malformed.
    func decodeJSON<T: Decodable>(_ type: T.Type, context: TicketlogRequestContext) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: context.maxUploadSize)
        } catch {
            throw APIError(
                .contentTooLarge, code: "too_large", "the request body is larger than \(context.maxUploadSize) bytes")
        }
        let contentType = headers[.contentType]?.lowercased() ?? ""
        guard contentType.hasPrefix("application/json") else {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json"
                    + (contentType.isEmpty ? " (the request has no Content-Type)" : ", not \(contentType.prefix(100))"))
        }
        if let charset = contentType.split(separator: ";").dropFirst().first(where: { $0.contains("charset=") }),
            !["utf-8", "utf8"].contains(
                charset.split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "")
        {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                "JSON must be UTF-8, not \(charset.trimmingCharacters(in: .whitespaces))")
        }
        // JSON never holds a raw NUL; refused here because JSONDecoder would take NULs as a sign
        // of UTF-16 and decode the body as such. Invalid UTF-8 it refuses itself.
        guard !buffer.readableBytesView.contains(0) else {
            throw APIError(.badRequest, code: "bad_request", "malformed request body: not UTF-8 JSON")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw APIError(.badRequest, code: "bad_request", "malformed request body: \(error.readableDescription)")
        } catch {
            throw APIError(.badRequest, code: "bad_request", "malformed request body")
        }
    }
}
