import Foundation

/// An event a caller wants to append: everything but what the store assigns (position, version,
/// recording time and chain hash).
public struct ProposedEvent: Hashable, Sendable {
    /// The idempotency key: appending an event whose id is already stored returns the stored
    /// event's position instead of appending it again.
    public var id: UUID
    public var actor: Actor
    public var occurredAt: Timestamp
    public var origin: Origin
    public var correlationID: UUID?
    public var causationID: UUID?
    public var payload: EventPayload

    public var type: EventType { payload.type }

    public init(
        id: UUID = .timeOrdered(),
        actor: Actor,
        occurredAt: Timestamp = .now,
        origin: Origin = .local,
        correlationID: UUID? = nil,
        causationID: UUID? = nil,
        payload: EventPayload
    ) {
        self.id = id
        self.actor = actor
        self.occurredAt = occurredAt
        self.origin = origin
        self.correlationID = correlationID
        self.causationID = causationID
        self.payload = payload
    }
}
