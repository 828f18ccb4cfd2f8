import GRDB
import Synchronization

/// The small tables format 2 rows refer to by integer — `actors(key, id, role)`,
/// `event_types(key, name)` and `streams(key, name)` — cached in both directions.
///
/// Rows of these tables are never changed or deleted, so a cached pair stays true, with one
/// exception: a key inserted by a write transaction that then rolls back. The writer inserts
/// them outside any savepoint, and ``reset()`` after a failed transaction forgets everything.
final class RowVocabulary: Sendable {
    private struct Tables {
        var actorKeys: [Actor: Int64] = [:]
        var actors: [Int64: Actor] = [:]
        var typeKeys: [String: Int64] = [:]
        var types: [Int64: String] = [:]
        var streams: [Int64: String] = [:]
    }

    private let tables = Mutex(Tables())

    func reset() {
        tables.withLock { $0 = Tables() }
    }

    // MARK: Reading rows

    func actor(_ key: Int64, _ db: Database) throws -> Actor {
        if let actor = tables.withLock({ $0.actors[key] }) { return actor }
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT id, role FROM actors WHERE key = ?"), arguments: [key])
        else { throw EventStoreError.missingReference("actor", key, position: nil) }
        guard let role = Actor.Role(rawValue: row[1]) else {
            throw EventStoreError.unknownRole(row[1], actor: key, position: nil)
        }
        let actor = Actor(id: row[0], role: role)
        tables.withLock {
            $0.actors[key] = actor
            $0.actorKeys[actor] = key
        }
        return actor
    }

    func type(_ key: Int64, _ db: Database) throws -> String {
        if let type = tables.withLock({ $0.types[key] }) { return type }
        guard
            let name = try String.fetchOne(
                db.cachedStatement(sql: "SELECT name FROM event_types WHERE key = ?"), arguments: [key])
        else { throw EventStoreError.missingReference("event type", key, position: nil) }
        tables.withLock {
            $0.types[key] = name
            $0.typeKeys[name] = key
        }
        return name
    }

    func stream(_ key: Int64, _ db: Database) throws -> String {
        if let name = tables.withLock({ $0.streams[key] }) { return name }
        guard
            let name = try String.fetchOne(
                db.cachedStatement(sql: "SELECT name FROM streams WHERE key = ?"), arguments: [key])
        else { throw EventStoreError.missingReference("stream", key, position: nil) }
        tables.withLock { $0.streams[key] = name }
        return name
    }

    // MARK: Writing rows (the writer's transaction, outside savepoints)

    func actorKey(_ actor: Actor, _ db: Database) throws -> Int64 {
        if let key = tables.withLock({ $0.actorKeys[actor] }) { return key }
        let key: Int64
        if let stored = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT key FROM actors WHERE id = ? AND role = ?"),
            arguments: [actor.id, actor.role.rawValue])
        {
            key = stored
        } else {
            try db.cachedStatement(sql: "INSERT INTO actors(id, role) VALUES (?, ?)")
                .execute(arguments: [actor.id, actor.role.rawValue])
            key = db.lastInsertedRowID
        }
        tables.withLock {
            $0.actorKeys[actor] = key
            $0.actors[key] = actor
        }
        return key
    }

    func typeKey(_ type: String, _ db: Database) throws -> Int64 {
        if let key = tables.withLock({ $0.typeKeys[type] }) { return key }
        let key: Int64
        if let stored = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT key FROM event_types WHERE name = ?"), arguments: [type])
        {
            key = stored
        } else {
            try db.cachedStatement(sql: "INSERT INTO event_types(name) VALUES (?)").execute(arguments: [type])
            key = db.lastInsertedRowID
        }
        tables.withLock {
            $0.typeKeys[type] = key
            $0.types[key] = type
        }
        return key
    }
}
