/// The typed content of an event. Its case decides the event's ``EventType``.
public enum EventPayload: Hashable, Sendable {
    case ticketOpened(TicketOpened)
    case agentAssigned(AgentAssigned)
    case agentUnassigned(AgentUnassigned)
    case memberJoined(MemberJoined)
    case memberLeft(MemberLeft)
    case messagePosted(MessagePosted)
    case messageEdited(MessageEdited)
    case messageDeleted(MessageDeleted)
    case statusChanged(StatusChanged)
    case deliverablePushed(DeliverablePushed)
    case erasurePerformed(ErasurePerformed)
    /// An event of a type this build does not know, kept as it was written.
    case unknown(type: EventType, payload: JSONValue)

    public var type: EventType {
        switch self {
        case .ticketOpened: .ticketOpened
        case .agentAssigned: .agentAssigned
        case .agentUnassigned: .agentUnassigned
        case .memberJoined: .memberJoined
        case .memberLeft: .memberLeft
        case .messagePosted: .messagePosted
        case .messageEdited: .messageEdited
        case .messageDeleted: .messageDeleted
        case .statusChanged: .statusChanged
        case .deliverablePushed: .deliverablePushed
        case .erasurePerformed: .erasurePerformed
        case .unknown(let type, _): type
        }
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .ticketOpened(let payload): try payload.encode(to: encoder)
        case .agentAssigned(let payload): try payload.encode(to: encoder)
        case .agentUnassigned(let payload): try payload.encode(to: encoder)
        case .memberJoined(let payload): try payload.encode(to: encoder)
        case .memberLeft(let payload): try payload.encode(to: encoder)
        case .messagePosted(let payload): try payload.encode(to: encoder)
        case .messageEdited(let payload): try payload.encode(to: encoder)
        case .messageDeleted(let payload): try payload.encode(to: encoder)
        case .statusChanged(let payload): try payload.encode(to: encoder)
        case .deliverablePushed(let payload): try payload.encode(to: encoder)
        case .erasurePerformed(let payload): try payload.encode(to: encoder)
        case .unknown(_, let payload): try payload.encode(to: encoder)
        }
    }

    /// Decodes the payload of an event of type `type`; a type this build does not know becomes
    /// ``unknown(type:payload:)``.
    init(type: EventType, from decoder: any Decoder) throws {
        switch type {
        case .ticketOpened: self = .ticketOpened(try TicketOpened(from: decoder))
        case .agentAssigned: self = .agentAssigned(try AgentAssigned(from: decoder))
        case .agentUnassigned: self = .agentUnassigned(try AgentUnassigned(from: decoder))
        case .memberJoined: self = .memberJoined(try MemberJoined(from: decoder))
        case .memberLeft: self = .memberLeft(try MemberLeft(from: decoder))
        case .messagePosted: self = .messagePosted(try MessagePosted(from: decoder))
        case .messageEdited: self = .messageEdited(try MessageEdited(from: decoder))
        case .messageDeleted: self = .messageDeleted(try MessageDeleted(from: decoder))
        case .statusChanged: self = .statusChanged(try StatusChanged(from: decoder))
        case .deliverablePushed: self = .deliverablePushed(try DeliverablePushed(from: decoder))
        case .erasurePerformed: self = .erasurePerformed(try ErasurePerformed(from: decoder))
        default: self = .unknown(type: type, payload: try JSONValue(from: decoder))
        }
    }
}
