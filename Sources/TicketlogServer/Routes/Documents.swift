import Hummingbird
import Ticketlog

/// The envelopes the API answers with; the read models inside encode as the core defines
/// (`TicketSummary`, `TicketState`, `AuditEntry`... are `Encodable`).

extension TicketSummary: ResponseEncodable {}
extension TicketState: ResponseEncodable {}

struct ChannelsResponse: ResponseEncodable {
    var channels: [TicketSummary]
}

/// `GET /api/chat/search`: the hits, best first.
struct SearchResponse: ResponseEncodable {
    var hits: [SearchHit]
}

struct ChannelInfoResponse: ResponseEncodable {
    var channel: TicketSummary
    var members: [TicketState.Member]
    var lastMessage: TicketState.Message?
}

struct ChannelReference: ResponseEncodable {
    var channelId: String
    var version: Int64
}

struct MessageResponse: Encodable, ResponseGenerator {
    var message: TicketState.Message
    var version: Int64

    /// The JSON `JSONEncoder` would make of it (sorted keys), written directly (tested).
    var json: [UInt8] {
        Array(#"{"message":"#.utf8) + message.canonicalJSON + Array(",\"version\":\(version)}".utf8)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        jsonResponse(ByteBuffer(bytes: json))
    }
}

/// 200 with `body`, JSON written without `JSONEncoder`.
private func jsonResponse(_ body: ByteBuffer, eTag: String? = nil) -> Response {
    var headers: HTTPFields = [
        .contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes),
    ]
    if let eTag { headers[.eTag] = eTag }
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
}

struct MessagesPage: Encodable {
    var messages: [TicketState.Message]
    /// Pass as `cursor` to get the next page; absent on the last page.
    var nextCursor: Int64?

    /// The JSON `JSONEncoder` would make of this page (sorted keys), written directly
    /// (``TicketState/Message/canonicalJSON(_:)``; the same bytes, tested).
    var json: [UInt8] {
        var bytes = Array(#"{"messages":"#.utf8)
        bytes += TicketState.Message.canonicalJSON(messages)
        if let nextCursor { bytes += Array(",\"nextCursor\":\(nextCursor)".utf8) }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// The answer with a page's JSON (``json``, as ``MessagePageCache`` keeps it): `ETag` names
    /// the ticket's content mark (a page is the same under the same mark), and a request whose
    /// `If-None-Match` names it gets 304 without the page.
    static func response(_ page: ByteBuffer, mark: TicketContentMark?, to request: Request) -> Response {
        guard let mark else { return jsonResponse(page) }
        let tag = "\"\(mark.lastPosition)-\(mark.erasures)\""
        if let wanted = request.headers[.ifNoneMatch], matches(wanted, tag) {
            return Response(status: .notModified, headers: [.eTag: tag])
        }
        return jsonResponse(page, eTag: tag)
    }

    /// Whether an `If-None-Match` value names `tag` (RFC 9110 13.1.2: weak comparison, `*` any).
    static func matches(_ field: String, _ tag: String) -> Bool {
        field.split(separator: ",").contains { candidate in
            let trimmed = candidate.trimmingCharacters(in: .whitespaces)
            return trimmed == "*" || (trimmed.hasPrefix("W/") ? trimmed.dropFirst(2) : trimmed[...]) == tag[...]
        }
    }
}

struct StatusResponse: ResponseEncodable {
    var channelId: String
    var status: String
    var version: Int64
}

struct DeliverableResponse: ResponseEncodable {
    var deliverable: DeliverablePushed
    var position: Int64
    var version: Int64
}

struct AuditPage: ResponseEncodable {
    var channelId: String
    var entries: [AuditEntry]
    var nextCursor: Int64?
}

struct ChatTokenResponse: ResponseEncodable {
    var token: String
    var userId: String
    var apiKey: String
}
