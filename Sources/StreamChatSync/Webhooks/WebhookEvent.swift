import Foundation
import Ticketlog

/// The parts of a Stream webhook body a ticket mirror needs. Lenient like Stream's own SDKs:
/// unknown keys are ignored, optional ones may be `null` or absent, and any event type parses
/// (``type`` tells what it is).
public struct WebhookEvent: Decodable, Sendable {
    public struct User: Decodable, Sendable {
        public var id: String
    }

    public struct Message: Decodable, Sendable {
        public var id: String
        public var text: String?
        /// `regular`, `system`, `deleted`, `error`...
        public var type: String?
        public var user: User?
        public var createdAt: String?
        public var updatedAt: String?
        public var deletedAt: String?
        /// Our marker on messages we sent ourselves (flattened custom field): the event that
        /// sent or last changed it.
        public var ticketlogEventID: String?
        /// Our marker: the log's id of a message we sent (its Stream id is ``StreamChatIDs/message(_:in:)``).
        public var ticketlogMessageID: String?

        enum CodingKeys: String, CodingKey {
            case id, text, type, user
            case createdAt = "created_at"
            case updatedAt = "updated_at"
            case deletedAt = "deleted_at"
            case ticketlogEventID = "ticketlog_event_id"
            case ticketlogMessageID = "ticketlog_message_id"
        }
    }

    public struct Member: Decodable, Sendable {
        public var userID: String?
        public var user: User?

        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
            case user
        }
    }

    /// A channel as webhooks carry it, with our custom fields flattened in.
    public struct Channel: Decodable, Sendable {
        public var id: String?
        public var ticketStatus: String?
        public var ticketAgent: String?
        public var truncatedAt: String?
        public var deletedAt: String?

        enum CodingKeys: String, CodingKey {
            case id
            case ticketStatus = "ticket_status"
            case ticketAgent = "ticket_agent"
            case truncatedAt = "truncated_at"
            case deletedAt = "deleted_at"
        }
    }

    public struct RequestInfo: Decodable, Sendable {
        /// `client` or `server`: set by Stream from how the request was authenticated. A request
        /// is `server` only when it was signed with the app's API secret, which no Stream client
        /// holds.
        public var type: String?
        /// The `X-Stream-Client` of the request that caused the event. Any client can send any
        /// value here: it means something only on a `server` request.
        public var sdk: String?
    }

    public var type: String
    /// Event time, RFC 3339 with up to nanoseconds.
    public var createdAt: String?
    public var cid: String?
    public var channelID: String?
    public var channelType: String?
    public var message: Message?
    public var member: Member?
    public var channel: Channel?
    public var user: User?
    public var hardDelete: Bool?
    public var requestInfo: RequestInfo?

    enum CodingKeys: String, CodingKey {
        case type, cid, message, member, channel, user
        case createdAt = "created_at"
        case channelID = "channel_id"
        case channelType = "channel_type"
        case hardDelete = "hard_delete"
        case requestInfo = "request_info"
    }

    /// Parses a webhook body.
    ///
    /// - Throws: ``StreamChatError`` (`unreadableWebhook`) with the reason (`not valid JSON`,
    ///   `missing field 'type'`...).
    public static func parse(_ body: some DataProtocol) throws -> WebhookEvent {
        do {
            return try JSONDecoder().decode(WebhookEvent.self, from: Data(body))
        } catch let error as DecodingError {
            throw StreamChatError(.unreadableWebhook, "webhook body: \(error.readableDescription)")
        }
    }

    /// The ticket stream of the channel (`ticket-{id}`), from `channel_id` or `cid`.
    public var stream: StreamID? {
        let id = channelID ?? cid.flatMap { $0.split(separator: ":", maxSplits: 1).last.map(String.init) }
        guard let id, id.hasPrefix("ticket-") else { return nil }
        return StreamID(rawValue: id)
    }

    /// Whether the change was requested with the app's API secret (`request_info.type: server`):
    /// by this engine or by another backend holding the secret, never by a Stream client.
    public var isServerSide: Bool { requestInfo?.type == "server" }

    /// Whether this engine's own mirror caused the change: a server-side request that names our
    /// client (``StreamChatAuth/clientName``). The client name alone proves nothing (a Stream client
    /// can send any `X-Stream-Client`); with `type: server` it needs the API secret.
    public var isOurOwnRequest: Bool { isServerSide && requestInfo?.sdk == StreamChatAuth.clientName }

    /// The event time as a `Timestamp` (nanoseconds are cut to microseconds).
    public var occurredAt: Timestamp? { createdAt.flatMap(Timestamp.init(iso8601:)) }
}
