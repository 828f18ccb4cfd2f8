import GRDB

extension EventStore {
    /// Audit entries matching `query`, oldest first.
    ///
    /// The audit trail is the events table itself: the columns it filters on are the rows' own,
    /// with `UNIQUE(stream, version)` for a ticket and `events_by_actor` for a person.
    public func auditTrail(_ query: AuditQuery) async throws -> [AuditEntry] {
        let (sql, arguments) = Self.auditSQL(query)
        return try await read { db in
            try self.decodeRecords(db, sql: sql, arguments: arguments).map(AuditEntry.init(event:))
        }
    }

    /// The events matching `query` with their lines as `ticketlog read` prints them (the
    /// NDJSON export's rows), oldest first.
    func eventLines(_ query: AuditQuery) async throws -> [(event: RecordedEvent, line: [UInt8])] {
        let (sql, arguments) = Self.auditSQL(query)
        return try await read { db in
            var page: [(event: RecordedEvent, line: [UInt8])] = []
            let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
            while let row = try rows.next() {
                let stored = try self.storedEvent(row, db: db)
                let event = try Self.decodeRecord(
                    stored: stored.stored, columns: stored.columns, position: stored.position,
                    version: stored.version)
                page.append((event, try stored.line()))
            }
            return page
        }
    }

    private static func auditSQL(_ query: AuditQuery) -> (String, StatementArguments) {
        var conditions = ["e.position > ?"]
        var arguments: StatementArguments = [query.afterPosition]
        if let stream = query.stream {
            conditions.append("e.stream = (SELECT key FROM streams WHERE name = ?)")
            arguments += [stream.rawValue]
        }
        if let actor = query.actor {
            conditions.append("e.actor IN (SELECT key FROM actors WHERE id = ?)")
            arguments += [actor]
        }
        if let types = query.types {
            let sorted = types.map(\.rawValue).sorted()
            conditions.append(
                "e.type IN (SELECT key FROM event_types WHERE name IN (\(Array(repeating: "?", count: sorted.count).joined(separator: ","))))"
            )
            arguments += StatementArguments(sorted)
        }
        if let from = query.from {
            conditions.append("e.occurred_at >= ?")
            arguments += [from.microsecondsSinceEpoch]
        }
        if let to = query.to {
            conditions.append("e.occurred_at < ?")
            arguments += [to.microsecondsSinceEpoch]
        }
        arguments += [max(0, query.limit)]
        let sql = """
            SELECT \(Self.eventColumns) FROM events e
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY e.position LIMIT ?
            """
        return (sql, arguments)
    }
}
