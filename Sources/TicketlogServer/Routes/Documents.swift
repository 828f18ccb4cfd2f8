import Hummingbird
import Ticketlog

/// The JSON shapes the API answers with. Times are ISO 8601 UTC strings with microseconds.

struct ChannelDocument: ResponseEncodable {
    var channelId: String
    var ticketId: String?
    var title: String?
    var brand: String?
    var creator: String?
    var agent: String?
    var status: String
    var members: Int
    var messages: Int
    var deliverables: Int
    var openedAt: String?
    var lastActivityAt: String
    var version: Int

    init(_ summary: TicketSummary) {
        channelId = summary.stream.rawValue
        ticketId = summary.stream.ticketID
        title = summary.title
        brand = summary.brand
        creator = summary.creator
        agent = summary.agent
        status = summary.status
        members = summary.members
        messages = summary.messages
        deliverables = summary.deliverables
        openedAt = summary.openedAt?.description
        lastActivityAt = summary.lastActivityAt.description
        version = summary.events
    }
}

struct MemberDocument: Codable, Sendable {
    var user: String
    var role: String
    var joinedAt: String

    init(_ member: TicketState.Member) {
        user = member.user
        role = member.role.rawValue
        joinedAt = member.joinedAt.description
    }
}

struct MessageDocument: ResponseEncodable {
    var messageId: String
    var position: Int64
    var author: String
    var authorRole: String
    /// `nil` once deleted.
    var text: String?
    var attachments: [MessagePosted.Attachment]
    var postedAt: String
    var editedAt: String?
    var edits: Int
    var deleted: Bool

    init(_ message: TicketState.Message) {
        messageId = message.messageID
        position = message.position
        author = message.author.id
        authorRole = message.author.role.rawValue
        text = message.text
        attachments = message.attachments
        postedAt = message.postedAt.description
        editedAt = message.editedAt?.description
        edits = message.edits
        deleted = message.isDeleted
    }
}

struct ChannelsResponse: ResponseEncodable {
    var channels: [ChannelDocument]
}

struct ChannelInfoResponse: ResponseEncodable {
    var channel: ChannelDocument
    var members: [MemberDocument]
    var lastMessage: MessageDocument?
}

struct ChannelReference: ResponseEncodable {
    var channelId: String
    var version: Int64
}

struct MessageResponse: ResponseEncodable {
    var message: MessageDocument
    var version: Int64
}

struct MessagesPage: ResponseEncodable {
    var messages: [MessageDocument]
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

struct AuditEntryDocument: Encodable, Sendable {
    var position: Int64
    var occurredAt: String
    var recordedAt: String
    var actor: String
    var actorRole: String
    var type: String
    var origin: String
    var summary: String

    init(_ entry: AuditEntry) {
        position = entry.position
        occurredAt = entry.occurredAt.description
        recordedAt = entry.event.recordedAt.description
        actor = entry.actor.id
        actorRole = entry.actor.role.rawValue
        type = entry.type.rawValue
        origin = entry.origin
        summary = entry.summary
    }
}

struct AuditPage: ResponseEncodable {
    var channelId: String
    var entries: [AuditEntryDocument]
    var nextCursor: Int64?
}

struct StateDocument: ResponseEncodable {
    var channelId: String
    var position: Int64
    var version: Int64
    var title: String?
    var brand: String?
    var creator: String?
    var agent: String?
    var status: String
    var members: [MemberDocument]
    var messages: [MessageDocument]
    var deliverables: [DeliverablePushed]

    init(_ state: TicketState) {
        channelId = state.stream.rawValue
        position = state.position
        version = state.version
        title = state.title
        brand = state.brand
        creator = state.creator
        agent = state.agent
        status = state.status
        members = state.members.values.sorted { $0.joinedPosition < $1.joinedPosition }.map(MemberDocument.init)
        messages = state.messages.map(MessageDocument.init)
        deliverables = state.deliverables.map(\.deliverable)
    }
}

struct ChatTokenResponse: ResponseEncodable {
    var token: String
    var userId: String
    var apiKey: String
}
