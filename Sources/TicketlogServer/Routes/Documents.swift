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

struct MessageResponse: ResponseEncodable {
    var message: TicketState.Message
    var version: Int64
}

struct MessagesPage: Encodable, ResponseGenerator {
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

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = json
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .contentLength: String(body.count)],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
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
