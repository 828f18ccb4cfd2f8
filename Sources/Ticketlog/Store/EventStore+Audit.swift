extension EventStore {
    /// Audit entries matching `query`, oldest first.
    ///
    /// The audit trail is the events table itself: the columns it filters on are the rows' own,
    /// with `UNIQUE(stream, version)` for a ticket and `events_by_actor` for a person.
    public func auditTrail(_ query: AuditQuery) async throws -> [AuditEntry] {
        let (condition, arguments) = Self.auditCondition(query)
        return try await readSession { session in
            try self.events(session, where: condition, arguments).map(AuditEntry.init(event:))
        }
    }

    /// The events matching `query` with their lines as `ticketlog read` prints them (the
    /// NDJSON export's rows), oldest first.
    func eventLines(_ query: AuditQuery) async throws -> [(event: RecordedEvent, line: [UInt8])] {
        let (condition, arguments) = Self.auditCondition(query)
        return try await readSession { session in
            try self.storedEvents(session, where: condition, arguments).map { stored in
                (
                    try Self.decodeRecord(
                        stored: stored.stored, columns: stored.columns, position: stored.position,
                        version: stored.version),
                    try stored.line()
                )
            }
        }
    }

    /// The condition on `events e` (with its ordering and limit) that selects `query`'s events.
    private static func auditCondition(_ query: AuditQuery) -> (String, [SQLValue]) {
        var conditions = ["e.position > ?"]
        var arguments: [SQLValue] = [.integer(query.afterPosition)]
        if let stream = query.stream {
            conditions.append("e.stream = (SELECT key FROM streams WHERE name = ?)")
            arguments.append(.text(stream.rawValue))
        }
        if let actor = query.actor {
            conditions.append("e.actor IN (SELECT key FROM actors WHERE id = ?)")
            arguments.append(.text(actor))
        }
        if let types = query.types {
            let sorted = types.map(\.rawValue).sorted()
            conditions.append(
                "e.type IN (SELECT key FROM event_types WHERE name IN (\(Array(repeating: "?", count: sorted.count).joined(separator: ","))))"
            )
            arguments += sorted.map(SQLValue.text)
        }
        if let from = query.from {
            conditions.append("e.occurred_at >= ?")
            arguments.append(.integer(from.microsecondsSinceEpoch))
        }
        if let to = query.to {
            conditions.append("e.occurred_at < ?")
            arguments.append(.integer(to.microsecondsSinceEpoch))
        }
        arguments.append(.integer(Int64(max(0, query.limit))))
        return ("\(conditions.joined(separator: " AND ")) ORDER BY e.position LIMIT ?", arguments)
    }
}
