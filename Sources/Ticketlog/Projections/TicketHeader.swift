/// The facts about a ticket that every view of it shares: what it is, whose, who works on it,
/// where it stands. Folded by ``TicketState`` and ``TicketFacts`` alike, so they cannot disagree.
public struct TicketHeader: Hashable, Sendable {
    public var title: String?
    public var brand: String?
    public var creator: String?
    /// The agent assigned now, if any: the last one assigned and not unassigned since.
    public var agent: String?
    public var status: String = "open"
    public var openedAt: Timestamp?
    public var lastActivityAt: Timestamp?

    public init() {}

    public mutating func apply(_ event: RecordedEvent) {
        lastActivityAt = max(lastActivityAt ?? event.occurredAt, event.occurredAt)
        switch event.payload {
        case .ticketOpened(let opened):
            title = opened.title
            brand = opened.brand
            creator = opened.creator
            openedAt = event.occurredAt
        case .agentAssigned(let assigned):
            agent = assigned.agent
        case .agentUnassigned(let unassigned):
            if agent == unassigned.agent { agent = nil }
        case .statusChanged(let change):
            status = change.to
        default:
            break
        }
    }
}
