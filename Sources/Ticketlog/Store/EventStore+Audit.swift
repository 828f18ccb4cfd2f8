import GRDB

extension EventStore {
    /// Audit entries matching `query`, oldest first.
    public func auditTrail(_ query: AuditQuery) async throws -> [AuditEntry] {
        var conditions = ["a.position > ?"]
        var arguments: StatementArguments = [query.afterPosition]
        if let stream = query.stream {
            conditions.append("a.stream = (SELECT key FROM streams WHERE name = ?)")
            arguments += [stream.rawValue]
        }
        if let actor = query.actor {
            conditions.append("a.actor = ?")
            arguments += [actor]
        }
        if let types = query.types {
            let sorted = types.map(\.rawValue).sorted()
            conditions.append("a.type IN (\(Array(repeating: "?", count: sorted.count).joined(separator: ",")))")
            arguments += StatementArguments(sorted)
        }
        if let from = query.from {
            conditions.append("a.occurred_at >= ?")
            arguments += [from.microsecondsSinceEpoch]
        }
        if let to = query.to {
            conditions.append("a.occurred_at < ?")
            arguments += [to.microsecondsSinceEpoch]
        }
        arguments += [max(0, query.limit)]
        let sql = """
            SELECT e.position, e.version, e.codec, e.body FROM audit_trail a JOIN events e ON e.position = a.position
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY a.position LIMIT ?
            """
        return try await read { [arguments] db in
            try self.decodeRecords(db, sql: sql, arguments: arguments).map(AuditEntry.init(event:))
        }
    }
}
