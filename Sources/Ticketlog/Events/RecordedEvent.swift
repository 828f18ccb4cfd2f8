import Foundation

/// An event as stored in the log.
public struct RecordedEvent: Hashable, Sendable, Identifiable {
    /// The global position: 1, 2, 3... without gaps, in commit order.
    public var position: Int64
    public var stream: StreamID
    /// The version within ``stream``: 1, 2, 3... without gaps.
    public var version: Int64
    public var id: UUID
    public var actor: Actor
    public var occurredAt: Timestamp
    /// When the store accepted the event.
    public var recordedAt: Timestamp
    public var origin: Origin
    public var correlationID: UUID?
    public var causationID: UUID?
    public var payload: EventPayload
    /// Some of the payload's personal fields were erased (issue 17): their content key is
    /// destroyed, and they read as empty strings.
    public var contentErased = false

    public var type: EventType { payload.type }

    public init(
        position: Int64, stream: StreamID, version: Int64, id: UUID, actor: Actor,
        occurredAt: Timestamp, recordedAt: Timestamp, origin: Origin,
        correlationID: UUID?, causationID: UUID?, payload: EventPayload
    ) {
        self.position = position
        self.stream = stream
        self.version = version
        self.id = id
        self.actor = actor
        self.occurredAt = occurredAt
        self.recordedAt = recordedAt
        self.origin = origin
        self.correlationID = correlationID
        self.causationID = causationID
        self.payload = payload
    }

    /// The event as it was proposed, without what the store assigned.
    public var proposed: ProposedEvent {
        ProposedEvent(
            id: id, actor: actor, occurredAt: occurredAt, origin: origin,
            correlationID: correlationID, causationID: causationID, payload: payload)
    }
}
