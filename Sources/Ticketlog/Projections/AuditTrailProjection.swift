import GRDB

/// An index of every event by ticket, actor, type and time, for the audit trail. The readable
/// entry is rendered from the event itself (``AuditEntry``), so nothing is stored twice.
struct AuditTrailProjection: Projection {
    let name = "audit_trail"
    let version = 1
    let tables = ["audit_trail"]

    func createSchema(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE audit_trail (
                    position INTEGER PRIMARY KEY,
                    stream INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    actor_role TEXT NOT NULL,
                    type TEXT NOT NULL,
                    occurred_at INTEGER NOT NULL,
                    origin TEXT NOT NULL
                ) STRICT;
                CREATE INDEX audit_trail_by_stream ON audit_trail(stream, position);
                CREATE INDEX audit_trail_by_actor ON audit_trail(actor, position);
                """)
    }

    func apply(_ projected: ProjectedEvent, _ db: Database) throws {
        let event = projected.event
        let origin: String =
            event.origin.kind
        try db.cachedStatement(
            sql: """
                INSERT INTO audit_trail(position, stream, actor, actor_role, type, occurred_at, origin)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            event.position, projected.streamKey, event.actor.id, event.actor.role.rawValue, event.type.rawValue,
            event.occurredAt.microsecondsSinceEpoch, origin,
        ])
    }
}
