import Foundation
import Logging
import Ticketlog

extension EventStore {
    /// Opens the log named by `database`: a PostgreSQL URL (`postgres://user@host:port/db`,
    /// the password from the URL or `PGPASSWORD`) or the path of an SQLite file — one
    /// configuration value for either backend. The store answers the same either way; on
    /// PostgreSQL several processes may append to one log at once.
    ///
    /// - Throws: `EventStoreError` in one line naming the log and what was found:
    ///   `storageFailure` when it cannot be reached or opened,
    ///   `unknownFormat` for a database or file of another
    ///   format or version. Nothing is written then.
    public static func open(
        database: String, configuration: Configuration = .init(), logger: Logger = .disabled
    ) async throws -> EventStore {
        guard PostgresLocation.isURL(database) else {
            return try EventStore(path: database, configuration: configuration, logger: logger)
        }
        return try await open(
            try PostgresLocation(url: database), createIfMissing: configuration.createIfMissing,
            configuration: configuration, logger: logger)
    }

    /// Connects and checks the database: a log this build reads, or an empty database, in which
    /// the log's tables are created when `createIfMissing` is set.
    ///
    /// With `catchUpProjections` (the default), projections new in this build or behind the head
    /// catch up before it returns; `verify` and copies leave them (a damaged log must still open
    /// to be verified).
    ///
    /// - Throws: ``EventStoreError`` in one line naming the database and what was found:
    ///   ``EventStoreError/Code/storageFailure`` when the server cannot be reached or refuses the
    ///   user, password or database; ``EventStoreError/Code/unknownFormat`` for a database of
    ///   another format or version. Nothing is written then.
    package static func open(
        _ location: PostgresLocation, createIfMissing: Bool = true, configuration: Configuration = .init(),
        catchUpProjections: Bool = true, logger: Logger = .disabled
    ) async throws -> EventStore {
        let database = try await PostgresLog.connecting(
            location, readers: configuration.maximumReaders, logger: logger)
        do {
            let opened = try await database.transaction(readOnly: false) { session -> Opened in
                try session.execute("SELECT pg_advisory_xact_lock(?)", [.integer(PostgresLog.schemaLock)])
                if try Schema.check(session, name: location.description, kind: "a PostgreSQL database") == .empty {
                    guard createIfMissing else {
                        throw EventStoreError(
                            code: .storageFailure, message: "no log at \(location): the database holds no tables")
                    }
                    try PostgresSchema.create(session)
                }
                // A wrong master key, or none for a log holding encrypted content that is to be
                // written, is refused before anything is written.
                try EventStore.checkMasterKey(
                    session, name: location.description, masterKey: configuration.masterKey,
                    forWriting: !configuration.readOnly)
                try LogWriter.prepareProjections(session)
                var keyring: ContentKeyring?
                if let master = configuration.masterKey {
                    if !configuration.readOnly { try EventStore.prepareEncryption(session, masterKey: master) }
                    keyring = ContentKeyring(master: master)
                    try keyring?.load(session)
                }
                let head = try LogTables(session).meta("head_position").integer ?? 0
                let sealedFrom = try EventStore.sealedFromPosition(session)
                // Encrypted content opened without its master key is read, not written.
                let writer =
                    sealedFrom != nil && keyring == nil
                    ? nil
                    : try LogWriter(
                        configuration: configuration, session: session, keyring: keyring,
                        name: location.description)
                return Opened(writer: writer, head: head, keyring: keyring, sealedFrom: sealedFrom)
            }
            return try await EventStore.open(
                shared: database, writer: opened.writer, head: opened.head, keyring: opened.keyring,
                sealedFrom: opened.sealedFrom, configuration: configuration, catchUpProjections: catchUpProjections,
                logger: logger)
        } catch {
            await database.close()
            throw error
        }
    }

    /// Re-wraps every live content key of the log at `location` from `old` to `new` and records
    /// the new key's fingerprint, in one transaction; then vacuums the key table. No event
    /// changes. Nodes still running with `old` refuse their next read or write (restart them
    /// with `new`).
    ///
    /// - Returns: how many keys were re-wrapped.
    package static func rotateMasterKey(_ location: PostgresLocation, from old: MasterKey, to new: MasterKey)
        async throws -> Int
    {
        let database = try await PostgresLog.connecting(location, readers: 1, logger: .disabled)
        do {
            let count = try await database.transaction(readOnly: false) { session in
                guard try Schema.check(session, name: location.description, kind: "a PostgreSQL database") != .empty
                else {
                    throw EventStoreError(
                        code: .storageFailure, message: "no log at \(location): the database holds no tables")
                }
                return try EventStore.rotateMasterKey(session, name: location.description, from: old, to: new)
            }
            try await database.maintain(["VACUUM content_keys"])
            await database.close()
            return count
        } catch {
            await database.close()
            throw error
        }
    }

    /// What opening a log found and made in its first transaction.
    private struct Opened: Sendable {
        var writer: LogWriter?
        var head: Int64
        var keyring: ContentKeyring?
        var sealedFrom: Int64?
    }

    /// Opens the log, runs `body` with it and closes it, whether `body` returns or throws.
    package static func using<T>(
        _ location: PostgresLocation, createIfMissing: Bool = true, configuration: Configuration = .init(),
        catchUpProjections: Bool = true, _ body: (EventStore) async throws -> T
    ) async throws -> T {
        let store = try await open(
            location, createIfMissing: createIfMissing, configuration: configuration,
            catchUpProjections: catchUpProjections)
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }

    /// The server's version (`SHOW server_version`), for reports.
    package func serverVersion() async throws -> String {
        try await readSession { session in
            "PostgreSQL " + (try session.value("SHOW server_version").text ?? "?")
        }
    }
}
