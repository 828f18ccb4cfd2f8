/// Analytics facts about one ticket, folded from its events: response and resolution times,
/// message counts by role, deliverables.
public struct TicketFacts: Hashable, Sendable {
    public var stream: StreamID
    /// Title, brand, creator, agent, status, opened and last activity.
    public var header = TicketHeader()
    /// The first message by an agent after the ticket opened.
    public var firstAgentResponseAt: Timestamp?
    /// The first time the status became `resolved` or `closed`.
    public var resolvedAt: Timestamp?
    public var events = 0
    public var messages = 0
    public var messagesByRole: [Actor.Role: Int] = [:]
    public var messagesEdited = 0
    public var messagesDeleted = 0
    public var deliverables = 0

    public init(stream: StreamID) {
        self.stream = stream
    }

    /// Seconds from opening to the first agent message.
    public var firstAgentResponseSeconds: Double? { seconds(from: header.openedAt, to: firstAgentResponseAt) }
    /// Seconds from opening to resolution.
    public var resolutionSeconds: Double? { seconds(from: header.openedAt, to: resolvedAt) }

    public mutating func apply(_ event: RecordedEvent) {
        events += 1
        header.apply(event)
        switch event.payload {
        case .messagePosted:
            messages += 1
            messagesByRole[event.actor.role, default: 0] += 1
            if event.actor.role == .agent, firstAgentResponseAt == nil,
                header.openedAt.map({ event.occurredAt >= $0 }) ?? true
            {
                firstAgentResponseAt = event.occurredAt
            }
        case .messageEdited:
            messagesEdited += 1
        case .messageDeleted:
            messagesDeleted += 1
        case .statusChanged(let change):
            if resolvedAt == nil, ["resolved", "closed"].contains(change.to) { resolvedAt = event.occurredAt }
        case .deliverablePushed:
            deliverables += 1
        case .ticketOpened, .agentAssigned, .agentUnassigned, .memberJoined, .memberLeft, .erasurePerformed, .unknown:
            break
        }
    }

    private func seconds(from start: Timestamp?, to end: Timestamp?) -> Double? {
        guard let start, let end else { return nil }
        return Double(end.microsecondsSinceEpoch - start.microsecondsSinceEpoch) / 1_000_000
    }
}
