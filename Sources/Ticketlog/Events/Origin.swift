/// Where an event came from: this engine, or Stream Chat (through a webhook or a backfill).
public enum Origin: Hashable, Sendable, Codable {
    /// Written through this engine's API.
    case local
    /// Mirrored in from Stream Chat. `webhookID` is the delivery's `X-Webhook-Id`, when there was
    /// one; `messageID` the Stream message id the event is about, when there is one.
    case stream(webhookID: String?, messageID: String?)

    private enum CodingKeys: String, CodingKey {
        case kind
        case webhookID = "webhookId"
        case messageID = "messageId"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .kind) {
        case "local":
            self = .local
        case "stream":
            self = .stream(
                webhookID: try container.decodeIfPresent(String.self, forKey: .webhookID),
                messageID: try container.decodeIfPresent(String.self, forKey: .messageID))
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "unknown origin kind \(other.debugDescription)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .local:
            try container.encode("local", forKey: .kind)
        case .stream(let webhookID, let messageID):
            try container.encode("stream", forKey: .kind)
            try container.encodeIfPresent(webhookID, forKey: .webhookID)
            try container.encodeIfPresent(messageID, forKey: .messageID)
        }
    }
}
