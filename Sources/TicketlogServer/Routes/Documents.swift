import Hummingbird
import Ticketlog

/// The envelopes the API answers with; the read models inside encode as the core defines
/// (`TicketSummary`, `TicketState`, `AuditEntry`... are `Encodable`).

extension TicketSummary: ResponseEncodable {}
extension TicketState: ResponseEncodable {}

struct ChannelsResponse: ResponseEncodable {
    var channels: [TicketSummary]
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

struct MessagesPage: ResponseEncodable {
    var messages: [TicketState.Message]
    /// Pass as `cursor` to get the next page; absent on the last page.
    var nextCursor: Int64?
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
