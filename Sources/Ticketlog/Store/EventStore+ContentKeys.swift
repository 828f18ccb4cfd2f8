import Foundation
import GRDB

/// Whether and how a log encrypts personal content (issue 17), for `stats` and operators.
public struct ContentEncryptionStatus: Sendable, Equatable {
    /// The fingerprint of the master key the log is encrypted with.
    public var masterKeyFingerprint: String
    /// The first position appended with a master key (earlier events hold plaintext).
    public var sealedFromPosition: Int64
    public var contentKeys: Int
    public var erasedKeys: Int
}

extension EventStore {
    /// How the log encrypts its content; `nil` for a log that stores plaintext.
    public func contentEncryption() async throws -> ContentEncryptionStatus? {
        if shared != nil {
            return try await readSession { session -> ContentEncryptionStatus? in
                let meta = try LogTables(session).meta(["master_key_fingerprint", "sealed_from_position"])
                guard let fingerprint = meta["master_key_fingerprint"]?.text,
                    let sealedFrom = meta["sealed_from_position"]?.integer
                else { return nil }
                let counts = try session.rows(
                    "SELECT count(*), count(*) - count(wrapped) FROM content_keys", []
                ).first
                return ContentEncryptionStatus(
                    masterKeyFingerprint: fingerprint, sealedFromPosition: sealedFrom,
                    contentKeys: Int(counts?[0].integer ?? 0), erasedKeys: Int(counts?[1].integer ?? 0))
            }
        }
        return try await read { db in
            guard try db.tableExists("meta"),
                let fingerprint = try String.fetchOne(
                    db, sql: "SELECT value FROM meta WHERE key = 'master_key_fingerprint'"),
                let sealedFrom = try Self.sealedFromPosition(db)
            else { return nil }
            let counts =
                try db.tableExists("content_keys")
                ? try Row.fetchOne(db, sql: "SELECT count(*), count(*) - count(wrapped) FROM content_keys") : nil
            return ContentEncryptionStatus(
                masterKeyFingerprint: fingerprint, sealedFromPosition: sealedFrom,
                contentKeys: counts?[0] ?? 0, erasedKeys: counts?[1] ?? 0)
        }
    }

    /// `event` with its personal fields sealed under the content key of its author, ticket and
    /// month, the keys made for it, and the fields sealed (their ciphertexts go to the stored
    /// body as they are).
    static func sealed(
        _ event: ProposedEvent, stream: StreamID, keyring: ContentKeyring
    ) throws -> (ProposedEvent, [ContentKey], sealedWith: String?, fields: [SealedField.Sealed]) {
        var key: (key: ContentKey, isNew: Bool)?
        var fields: [SealedField.Sealed] = []
        var sealed = event
        sealed.payload = try event.payload.mappingPersonalFields { path, value in
            if key == nil {
                key = try keyring.sealingKey(subject: event.actor.id, stream: stream, time: event.occurredAt)
            }
            let field = try SealedField.sealed(value, key: key!.key, event: event.id, path: path)
            fields.append(field)
            return field.value
        }
        return (sealed, key.map { $0.isNew ? [$0.key] : [] } ?? [], key?.key.id, fields)
    }

    /// Writes the rows of the content keys `events` were sealed with that are not written yet.
    func writeContentKeys(of events: [PreparedAppend.Event], _ db: Database) throws {
        try keyring?.writeRows(of: events, now: configuration.clock(), SQLiteSession(db))
    }

    /// `event` with its sealed fields opened; erased ones (their key destroyed) read as empty
    /// and set ``RecordedEvent/contentErased``. Without a master key, sealed fields stay as
    /// stored.
    func opened(_ event: RecordedEvent, _ db: Database) throws -> RecordedEvent {
        guard let keyring else { return event }
        return try keyring.open(event, SQLiteSession(db))
    }

    /// Refuses a master key the log was not encrypted with, or a missing one for writing (reads
    /// `meta` only).
    static func checkMasterKey(_ db: Database, path: String, masterKey: MasterKey?, forWriting: Bool) throws {
        guard try db.tableExists("meta") else { return }
        try checkMasterKey(SQLiteSession(db), name: path, masterKey: masterKey, forWriting: forWriting)
    }

    /// ``checkMasterKey(_:path:masterKey:forWriting:)`` through either backend, on a log whose
    /// tables exist.
    package static func checkMasterKey(
        _ session: any SQLSession, name: String, masterKey: MasterKey?, forWriting: Bool
    ) throws {
        let stored = try LogTables(session).meta("master_key_fingerprint").text
        switch (stored, masterKey) {
        case (let stored?, let given?) where stored != given.fingerprint:
            throw EventStoreError(
                code: .masterKey,
                message:
                    "\(name) is encrypted with master key \(stored); the key given is \(given.fingerprint). Nothing was written"
            )
        case (let stored?, nil) where forWriting:
            throw EventStoreError(
                code: .masterKey,
                message:
                    "\(name) holds encrypted content (master key \(stored)): give its master key (TICKETLOG_MASTER_KEY or a key file) to write to it. Nothing was written"
            )
        default:
            break
        }
    }

    static func sealedFromPosition(_ db: Database) throws -> Int64? {
        try sealedFromPosition(SQLiteSession(db))
    }

    package static func sealedFromPosition(_ session: any SQLSession) throws -> Int64? {
        try LogTables(session).meta("sealed_from_position").integer
    }

    /// At a writable opening with a master key: the key table, and the fingerprint of a log
    /// encrypted from now on (with the position its sealed content starts at).
    static func prepareEncryption(_ db: Database, masterKey: MasterKey) throws {
        try ContentKeyring.createTable(db)
        try prepareEncryption(SQLiteSession(db), masterKey: masterKey)
    }

    /// ``prepareEncryption(_:masterKey:)`` on a log whose key table exists (a PostgreSQL log has
    /// it from the start).
    package static func prepareEncryption(_ session: any SQLSession, masterKey: MasterKey) throws {
        let meta = LogTables(session)
        guard try meta.meta("master_key_fingerprint").isNull else { return }
        let head = try ChainHead.position(session)
        try meta.setMeta("master_key_fingerprint", .text(masterKey.fingerprint))
        try meta.setMeta("sealed_from_position", .integer(head + 1))
    }
}
