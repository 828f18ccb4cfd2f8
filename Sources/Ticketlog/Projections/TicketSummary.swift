/// A ticket at a glance, from the ticket summary, membership and message projections.
public struct TicketSummary: Hashable, Sendable {
    public var stream: StreamID
    public var title: String?
    public var brand: String?
    public var creator: String?
    public var agent: String?
    public var status: String
    public var openedAt: Timestamp?
    public var lastActivityAt: Timestamp
    public var lastPosition: Int64
    public var events: Int
    public var deliverables: Int
    /// Members in the channel now.
    public var members: Int
    /// Messages not deleted.
    public var messages: Int
}

/// Which tickets to list.
public struct TicketFilter: Hashable, Sendable {
    public var brand: String?
    public var creator: String?
    public var agent: String?
    /// Tickets whose channel has this user as a member now.
    public var member: String?
    public var status: String?

    public init(
        brand: String? = nil, creator: String? = nil, agent: String? = nil, member: String? = nil, status: String? = nil
    ) {
        self.brand = brand
        self.creator = creator
        self.agent = agent
        self.member = member
        self.status = status
    }

    /// Every ticket.
    public static let all = TicketFilter()
}

/// A moment in a log: after a position, or as of a time (the events recorded by then).
public enum PointInTime: Hashable, Sendable {
    /// After the event at this position (and every event before it).
    case position(Int64)
    /// After every event recorded at or before this time (`recordedAt`: what the log knew).
    case time(Timestamp)
}

/// Where a page of messages starts.
public enum MessageCursor: Hashable, Sendable {
    /// Messages posted after (forwards) or before (backwards) this position, exclusive.
    case position(Int64)
    /// Messages posted at or after (forwards), or at or before (backwards), this time.
    case time(Timestamp)
}

/// What every read of a ticket's messages depends on: the position of the ticket's last event
/// (a post, an edit or a delete of one of its messages is an event of the ticket) and the
/// version of the log's `erasures` stream (an erasure makes content read as erased without an
/// event in the ticket). Two reads under equal marks answer the same messages, so a mark can
/// keep a page of messages, or name it (an HTTP `ETag`).
public struct TicketContentMark: Hashable, Sendable {
    public var lastPosition: Int64
    public var erasures: Int64

    public init(lastPosition: Int64, erasures: Int64) {
        self.lastPosition = lastPosition
        self.erasures = erasures
    }
}

/// Who a ticket belongs to: what access to it is decided by (``TicketPolicy``).
public struct TicketParties: Hashable, Sendable {
    public var brand: String?
    public var creator: String?
    public var agent: String?

    public init(brand: String?, creator: String?, agent: String?) {
        self.brand = brand
        self.creator = creator
        self.agent = agent
    }
}

extension TicketSummary {
    /// The ticket's brand, creator and assigned agent.
    public var parties: TicketParties { TicketParties(brand: brand, creator: creator, agent: agent) }
}
