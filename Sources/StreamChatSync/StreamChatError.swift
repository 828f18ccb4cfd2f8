/// What went wrong on the Stream Chat side, for people: the sync's own errors (the store's are
/// `EventStoreError`, Stream's refusals ``StreamChatAPIError``). Nothing here knows HTTP; a server
/// that mounts the webhooks maps these to its statuses.
public struct StreamChatError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// A webhook body that is not valid gzip, inflates too far, or is not the JSON expected.
        case unreadableWebhook = "unreadable_webhook"
        /// Stream has no such channel.
        case channelNotFound = "channel_not_found"
        /// No dead letter at the position asked for.
        case noDeadLetter = "no_dead_letter"
        /// The configured base URL and a request path make no URL.
        case invalidURL = "invalid_url"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
