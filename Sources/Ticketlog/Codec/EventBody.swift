import Foundation

/// The canonical form of an event as stored: everything but position, version and hash (which
/// live in their own columns and enter the chain hash directly).
///
/// Encoded with sorted keys and no whitespace, so equal events give byte-identical bodies.
/// `Fixtures/golden/` pins the exact bytes.
struct EventBody: Hashable, Sendable, Codable {
    var id: UUID
    var stream: StreamID
    var actor: Actor
    var occurredAt: Timestamp
    var recordedAt: Timestamp
    var origin: Origin
    var correlationID: UUID?
    var causationID: UUID?
    var payload: EventPayload

    var type: EventType { payload.type }

    init(_ event: ProposedEvent, stream: StreamID, recordedAt: Timestamp) {
        id = event.id
        self.stream = stream
        actor = event.actor
        occurredAt = event.occurredAt
        self.recordedAt = recordedAt
        origin = event.origin
        correlationID = event.correlationID
        causationID = event.causationID
        payload = event.payload
    }

    var proposed: ProposedEvent {
        ProposedEvent(
            id: id, actor: actor, occurredAt: occurredAt, origin: origin,
            correlationID: correlationID, causationID: causationID, payload: payload)
    }

    func recorded(position: Int64, version: Int64) -> RecordedEvent {
        RecordedEvent(
            position: position, stream: stream, version: version, id: id, actor: actor,
            occurredAt: occurredAt, recordedAt: recordedAt, origin: origin,
            correlationID: correlationID, causationID: causationID, payload: payload)
    }

    private enum CodingKeys: String, CodingKey {
        case id, stream, type, actor, occurredAt, recordedAt, origin, payload
        case correlationID = "correlationId"
        case causationID = "causationId"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(LowercaseUUID.self, forKey: .id).value
        stream = try container.decode(StreamID.self, forKey: .stream)
        actor = try container.decode(Actor.self, forKey: .actor)
        occurredAt = try container.decode(Timestamp.self, forKey: .occurredAt)
        if decoder.userInfo[EventLine.userInfoKey] as? Bool == true {
            recordedAt =
                try container.decodeIfPresent(Timestamp.self, forKey: .recordedAt)
                ?? Timestamp(microsecondsSinceEpoch: 0)
        } else {
            recordedAt = try container.decode(Timestamp.self, forKey: .recordedAt)
        }
        origin = try container.decode(Origin.self, forKey: .origin)
        correlationID = try container.decodeIfPresent(LowercaseUUID.self, forKey: .correlationID)?.value
        causationID = try container.decodeIfPresent(LowercaseUUID.self, forKey: .causationID)?.value
        let type = try container.decode(EventType.self, forKey: .type)
        payload = try EventPayload(type: type, from: try container.superDecoder(forKey: .payload))
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(LowercaseUUID(id), forKey: .id)
        try container.encode(stream, forKey: .stream)
        try container.encode(type, forKey: .type)
        try container.encode(actor, forKey: .actor)
        try container.encode(occurredAt, forKey: .occurredAt)
        if encoder.userInfo[EventLine.userInfoKey] as? Bool != true {
            try container.encode(recordedAt, forKey: .recordedAt)
        }
        try container.encode(origin, forKey: .origin)
        try container.encodeIfPresent(correlationID.map(LowercaseUUID.init), forKey: .correlationID)
        try container.encodeIfPresent(causationID.map(LowercaseUUID.init), forKey: .causationID)
        try payload.encode(to: container.superEncoder(forKey: .payload))
    }
}

/// UUIDs are written in lowercase, as Stream Chat and most tools print them.
private struct LowercaseUUID: Codable {
    var value: UUID
    init(_ value: UUID) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = UUID(uuidString: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "invalid UUID \(text.debugDescription)")
        }
        self.value = value
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value.uuidString.lowercased())
    }
}
