/// A message was posted to the ticket's channel.
public struct MessagePosted: Hashable, Sendable, Codable {
    /// A file or link attached to a message.
    public struct Attachment: Hashable, Sendable, Codable {
        public var kind: String
        public var url: String
        public var title: String?

        public init(kind: String, url: String, title: String? = nil) {
            self.kind = kind
            self.url = url
            self.title = title
        }
    }

    /// The message id, shared with Stream Chat.
    public var messageID: String
    public var text: String
    public var attachments: [Attachment]

    public init(messageID: String, text: String, attachments: [Attachment] = []) {
        self.messageID = messageID
        self.text = text
        self.attachments = attachments
    }

    private enum CodingKeys: String, CodingKey {
        case messageID = "messageId"
        case text
        case attachments
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        messageID = try container.decode(String.self, forKey: .messageID)
        text = try container.decode(String.self, forKey: .text)
        attachments = try container.decodeIfPresent([Attachment].self, forKey: .attachments) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(messageID, forKey: .messageID)
        try container.encode(text, forKey: .text)
        if !attachments.isEmpty { try container.encode(attachments, forKey: .attachments) }
    }
}

/// The text of a message was changed.
public struct MessageEdited: Hashable, Sendable, Codable {
    public var messageID: String
    public var text: String

    public init(messageID: String, text: String) {
        self.messageID = messageID
        self.text = text
    }

    private enum CodingKeys: String, CodingKey {
        case messageID = "messageId"
        case text
    }
}

/// A message was deleted. The original stays in the log; projections hide it.
public struct MessageDeleted: Hashable, Sendable, Codable {
    public var messageID: String
    public init(messageID: String) { self.messageID = messageID }

    private enum CodingKeys: String, CodingKey {
        case messageID = "messageId"
    }
}
