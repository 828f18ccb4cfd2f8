/// The name of an event type as stored in the log, e.g. `message.posted`.
///
/// Names are facts in the past tense, `noun.verb-ed`. A log may hold types this build does not
/// know (written by a newer version); they are kept and round-trip untouched.
public struct EventType: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public static let ticketOpened = EventType(rawValue: "ticket.opened")
    public static let agentAssigned = EventType(rawValue: "agent.assigned")
    public static let agentUnassigned = EventType(rawValue: "agent.unassigned")
    public static let memberJoined = EventType(rawValue: "member.joined")
    public static let memberLeft = EventType(rawValue: "member.left")
    public static let messagePosted = EventType(rawValue: "message.posted")
    public static let messageEdited = EventType(rawValue: "message.edited")
    public static let messageDeleted = EventType(rawValue: "message.deleted")
    public static let statusChanged = EventType(rawValue: "status.changed")
    public static let deliverablePushed = EventType(rawValue: "deliverable.pushed")
    public static let erasurePerformed = EventType(rawValue: "erasure.performed")

    /// Every type this build knows how to decode into a typed payload.
    public static let known: [EventType] = [
        .ticketOpened, .agentAssigned, .agentUnassigned, .memberJoined, .memberLeft,
        .messagePosted, .messageEdited, .messageDeleted, .statusChanged, .deliverablePushed, .erasurePerformed,
    ]
}
