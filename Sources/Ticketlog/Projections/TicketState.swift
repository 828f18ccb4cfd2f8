/// Everything true about one ticket after some prefix of its stream: a pure fold of its events.
///
/// ``EventStore/ticketState(_:at:keepingLastMessages:)`` folds a stream up to a position or time;
/// the SQL projections keep the current state of the same facts (and answer the current state
/// with its last messages), and tests hold the two to agreeing.
public struct TicketState: Hashable, Sendable {
    /// A member of the ticket's channel.
    public struct Member: Hashable, Sendable {
        public var user: String
        public var role: Actor.Role
        public var joinedAt: Timestamp
        public var joinedPosition: Int64
    }

    /// A message with its edits and deletion applied.
    public struct Message: Hashable, Sendable {
        public var messageID: String
        public var position: Int64
        public var author: Actor
        /// The current text; `nil` once deleted.
        public var text: String?
        public var attachments: [MessagePosted.Attachment]
        public var postedAt: Timestamp
        public var editedAt: Timestamp?
        public var edits: Int
        public var deletedAt: Timestamp?

        public var isDeleted: Bool { deletedAt != nil }

        init(
            messageID: String, position: Int64, author: Actor, text: String?,
            attachments: [MessagePosted.Attachment], postedAt: Timestamp, editedAt: Timestamp?, edits: Int,
            deletedAt: Timestamp?
        ) {
            self.messageID = messageID
            self.position = position
            self.author = author
            self.text = text
            self.attachments = attachments
            self.postedAt = postedAt
            self.editedAt = editedAt
            self.edits = edits
            self.deletedAt = deletedAt
        }

        /// The message as `event`, its post, made it: before any edit or deletion.
        public init(posted: MessagePosted, event: RecordedEvent) {
            self.init(
                messageID: posted.messageID, position: event.position, author: event.actor, text: posted.text,
                attachments: posted.attachments, postedAt: event.occurredAt, editedAt: nil, edits: 0, deletedAt: nil)
        }
    }

    /// A deliverable with where and when it was pushed.
    public struct Deliverable: Hashable, Sendable {
        public var deliverable: DeliverablePushed
        public var position: Int64
        public var pushedBy: Actor
        public var pushedAt: Timestamp
    }

    public var stream: StreamID
    /// Title, brand, creator, agent, status, opened and last activity.
    public var header = TicketHeader()
    /// The members now, by user id.
    public var members: [String: Member] = [:]
    /// Messages in the order they were posted (deleted ones stay, as tombstones).
    public private(set) var messages: [Message] = []
    /// Where each message id is in ``messages``, kept with it: a post's check for a repeated id
    /// and an edit's or a delete's message found without a scan of every message (a scan per
    /// event made folding a ticket of thousands of messages quadratic: 4,390 messages took 36
    /// ms, half of it comparing ids; 17 ms without). Not part of the state's value.
    private var messageIndex = MessageIndex()
    /// How many earlier messages ``keepingLastMessages(_:)`` left out of ``messages``.
    public var messagesOmitted = 0
    public var deliverables: [Deliverable] = []
    /// The last event folded in (0 and 0 before any).
    public var position: Int64 = 0
    public var version: Int64 = 0

    public init(stream: StreamID) {
        self.stream = stream
    }

    /// A state assembled from the projections' rows (``TicketReads/currentState(_:lastMessages:)``):
    /// `messages` are the last ones, in posting order, and `messagesOmitted` the earlier ones.
    init(
        stream: StreamID, header: TicketHeader, members: [Member], messages: [Message], messagesOmitted: Int,
        deliverables: [Deliverable], position: Int64, version: Int64
    ) {
        self.stream = stream
        self.header = header
        self.members = Dictionary(members.map { ($0.user, $0) }, uniquingKeysWith: { first, _ in first })
        self.messages = messages
        messageIndex = MessageIndex(messages)
        self.messagesOmitted = messagesOmitted
        self.deliverables = deliverables
        self.position = position
        self.version = version
    }

    /// How many last messages a reader may ask a state to keep (`GET …/state?messages=`,
    /// `ticketlog replay --messages`).
    public static let keptMessageCounts = 0...10_000

    /// The state with only its last `count` messages (the earlier ones counted in
    /// ``messagesOmitted``): a ticket of thousands of messages is megabytes of state, and a
    /// reader showing its status, members and deliverables needs none of them.
    ///
    /// ``keptMessageCounts`` is what the API and the CLI accept for `count`.
    public func keepingLastMessages(_ count: Int) -> TicketState {
        var kept = self
        let dropped = max(0, messages.count - max(0, count))
        kept.messages.removeFirst(dropped)
        kept.messageIndex = MessageIndex(kept.messages)
        kept.messagesOmitted += dropped
        return kept
    }

    /// Folds `event` (the next event of this stream) into the state.
    public mutating func apply(_ event: RecordedEvent) {
        precondition(event.stream == stream, "an event of \(event.stream) folded into \(stream)")
        position = event.position
        version = event.version
        header.apply(event)
        switch event.payload {
        case .ticketOpened, .agentAssigned, .agentUnassigned, .statusChanged, .erasurePerformed, .unknown:
            break
        case .memberJoined(let joined):
            if members[joined.user] == nil {
                members[joined.user] = Member(
                    user: joined.user, role: joined.role, joinedAt: event.occurredAt, joinedPosition: event.position)
            }
        case .memberLeft(let left):
            members[left.user] = nil
        case .messagePosted(let posted):
            // A repeated message id (e.g. mirrored twice) keeps the first post.
            guard messageIndex.offsets[posted.messageID] == nil else { return }
            messageIndex.offsets[posted.messageID] = messages.count
            messages.append(Message(posted: posted, event: event))
        case .messageEdited(let edited):
            guard let index = messageIndex.offsets[edited.messageID], !messages[index].isDeleted else { return }
            messages[index].text = edited.text
            messages[index].editedAt = event.occurredAt
            messages[index].edits += 1
        case .messageDeleted(let deleted):
            guard let index = messageIndex.offsets[deleted.messageID], !messages[index].isDeleted else { return }
            messages[index].text = nil
            messages[index].attachments = []
            messages[index].deletedAt = event.occurredAt
        case .deliverablePushed(let pushed):
            deliverables.append(
                Deliverable(
                    deliverable: pushed, position: event.position, pushedBy: event.actor, pushedAt: event.occurredAt))
        }
    }

    public var title: String? { header.title }
    public var brand: String? { header.brand }
    public var creator: String? { header.creator }
    public var agent: String? { header.agent }
    public var status: String { header.status }
    public var openedAt: Timestamp? { header.openedAt }
    public var lastActivityAt: Timestamp? { header.lastActivityAt }

    /// Messages not deleted.
    public var visibleMessages: [Message] { messages.filter { !$0.isDeleted } }

    /// Each message id's offset in ``messages`` (ids are unique there: a repeated post is not
    /// kept). Derived from the messages, so it takes no part in equality or hashing.
    private struct MessageIndex: Hashable, Sendable {
        var offsets: [String: Int] = [:]

        init() {}

        init(_ messages: [Message]) {
            offsets = Dictionary(
                messages.enumerated().map { ($0.element.messageID, $0.offset) }, uniquingKeysWith: { first, _ in first }
            )
        }

        static func == (_: Self, _: Self) -> Bool { true }
        func hash(into _: inout Hasher) {}
    }
}
