/// The JSON shapes of read models, shared by the CLI's `--json` output and the HTTP API: camel
/// case keys, times as ISO 8601 UTC strings with microseconds, absent optionals omitted.

extension TicketSummary: Encodable {
    private enum CodingKeys: String, CodingKey {
        case channelId, ticketId, title, brand, creator, agent, status, members, messages, deliverables
        case openedAt, lastActivityAt, version
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stream.rawValue, forKey: .channelId)
        try container.encodeIfPresent(stream.ticketID, forKey: .ticketId)
        try container.encodeIfPresent(title, forKey: .title)
        try container.encodeIfPresent(brand, forKey: .brand)
        try container.encodeIfPresent(creator, forKey: .creator)
        try container.encodeIfPresent(agent, forKey: .agent)
        try container.encode(status, forKey: .status)
        try container.encode(members, forKey: .members)
        try container.encode(messages, forKey: .messages)
        try container.encode(deliverables, forKey: .deliverables)
        try container.encodeIfPresent(openedAt?.description, forKey: .openedAt)
        try container.encode(lastActivityAt.description, forKey: .lastActivityAt)
        try container.encode(events, forKey: .version)
    }
}

extension TicketState.Member: Encodable {
    private enum CodingKeys: String, CodingKey {
        case user, role, joinedAt, joinedPosition
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user, forKey: .user)
        try container.encode(role, forKey: .role)
        try container.encode(joinedAt.description, forKey: .joinedAt)
        try container.encode(joinedPosition, forKey: .joinedPosition)
    }
}

extension TicketState.Message: Encodable {
    private enum CodingKeys: String, CodingKey {
        case messageId, position, author, authorRole, text, attachments, postedAt, editedAt, edits, deleted
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(messageID, forKey: .messageId)
        try container.encode(position, forKey: .position)
        try container.encode(author.id, forKey: .author)
        try container.encode(author.role, forKey: .authorRole)
        try container.encodeIfPresent(text, forKey: .text)
        try container.encode(attachments, forKey: .attachments)
        try container.encode(postedAt.description, forKey: .postedAt)
        try container.encodeIfPresent(editedAt?.description, forKey: .editedAt)
        try container.encode(edits, forKey: .edits)
        try container.encode(isDeleted, forKey: .deleted)
    }
}

extension TicketState: Encodable {
    private enum CodingKeys: String, CodingKey {
        case channelId, position, version, title, brand, creator, agent, status, members, messages, messagesOmitted
        case deliverables
    }

    /// Members in joining order; deliverables as pushed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stream.rawValue, forKey: .channelId)
        try container.encode(position, forKey: .position)
        try container.encode(version, forKey: .version)
        try container.encodeIfPresent(title, forKey: .title)
        try container.encodeIfPresent(brand, forKey: .brand)
        try container.encodeIfPresent(creator, forKey: .creator)
        try container.encodeIfPresent(agent, forKey: .agent)
        try container.encode(status, forKey: .status)
        try container.encode(members.values.sorted { $0.joinedPosition < $1.joinedPosition }, forKey: .members)
        try container.encode(messages, forKey: .messages)
        try container.encode(messagesOmitted, forKey: .messagesOmitted)
        try container.encode(deliverables.map(\.deliverable), forKey: .deliverables)
    }
}

extension AuditEntry: Encodable {
    private enum CodingKeys: String, CodingKey {
        case position, channelId, occurredAt, recordedAt, actor, actorRole, type, origin, summary, event
    }

    /// The readable entry and, under `event`, the event itself.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(position, forKey: .position)
        try container.encode(stream.rawValue, forKey: .channelId)
        try container.encode(occurredAt.description, forKey: .occurredAt)
        try container.encode(event.recordedAt.description, forKey: .recordedAt)
        try container.encode(actor.id, forKey: .actor)
        try container.encode(actor.role, forKey: .actorRole)
        try container.encode(type, forKey: .type)
        try container.encode(origin, forKey: .origin)
        try container.encode(summary, forKey: .summary)
        try container.encode(event, forKey: .event)
    }
}

extension SearchHit: Encodable {
    private enum CodingKeys: String, CodingKey {
        case channelId, ticketId, messageId, position, author, authorRole, postedAt, editedAt, textPosition, snippet
    }

    /// The hit with its snippet as plain and matching parts (`ticketlog search --format ndjson`,
    /// `GET /api/chat/search`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ticket.rawValue, forKey: .channelId)
        try container.encode(ticket.ticketID ?? ticket.rawValue, forKey: .ticketId)
        try container.encode(messageID, forKey: .messageId)
        try container.encode(position, forKey: .position)
        try container.encode(author.id, forKey: .author)
        try container.encode(author.role, forKey: .authorRole)
        try container.encode(postedAt.description, forKey: .postedAt)
        try container.encodeIfPresent(editedAt?.description, forKey: .editedAt)
        try container.encode(textPosition, forKey: .textPosition)
        try container.encode(snippet, forKey: .snippet)
    }
}
