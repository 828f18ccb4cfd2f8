/// Where an event came from: this engine, or Stream Chat (through a webhook or a backfill).
public enum Origin: Hashable, Sendable, Codable {
    /// Written through this engine's API.
    case local
    /// Mirrored in from Stream Chat. `webhookID` is the delivery's `X-Webhook-Id`, when there was
    /// one; `messageID` the Stream message id the event is about, when there is one.
    ///
    /// Stored as `{"kind": "stream", ...}`: the canonical bodies, and so the hash chain, of every
    /// log written so far say so, and always will (``kind``).
    case streamChat(webhookID: String?, messageID: String?)

    /// What the stored event and the audit trail call this origin: `local` or `stream`.
    public var kind: String {
        switch self {
        case .local: "local"
        case .streamChat: "stream"
        }
    }

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
            self = .streamChat(
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
            try container.encode(kind, forKey: .kind)
        case .streamChat(let webhookID, let messageID):
            try container.encode(kind, forKey: .kind)
            try container.encodeIfPresent(webhookID, forKey: .webhookID)
            try container.encodeIfPresent(messageID, forKey: .messageID)
        }
    }
}
