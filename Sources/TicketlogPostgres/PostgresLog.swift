import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization
import Ticketlog

/// The log in a PostgreSQL database: the same tables, bodies, dictionaries and chain as the
/// SQLite file, behind the same storage boundary (ARCHITECTURE.md, "Storage boundary").
///
/// What is built: opening with the format check (or creating the log's tables in an empty
/// database), `verify`, and copies between SQLite files and PostgreSQL with the same head hash.
/// Appends, projections and the server on PostgreSQL are the next steps of issue 19.
///
/// One connection; transactions run one at a time on the log's own queue, which blocks on the
/// connection's futures (the format code above the boundary is synchronous). When the server
/// goes away, the transaction in flight fails with ``EventStoreError/Code/storageFailure``
/// (nothing it wrote is committed) and the next one connects again.
package final class PostgresLog: Sendable {
    package let location: PostgresLocation
    /// The connection; replaced by a new one when the server closed it (a restart, a network
    /// failure), at the start of the next transaction.
    private let connection: Mutex<PostgresConnection>
    let logger: Logger
    private let queue: DispatchQueue

    /// The key of the transaction-scoped advisory lock that creating the schema takes, so that
    /// nodes started together create it once.
    static let schemaLock: Int64 = 0x7469_636b_6574_6c67  // "ticketlg"

    private init(location: PostgresLocation, connection: PostgresConnection, logger: Logger) {
        self.location = location
        self.connection = Mutex(connection)
        self.logger = logger
        queue = DispatchQueue(label: "ticketlog.postgres.\(location.database)")
    }

    /// Connects and checks the database: a log this build reads, or an empty database, in which
    /// the log's tables are created when `createIfMissing` is set.
    ///
    /// - Throws: ``EventStoreError`` in one line naming the database and what was found:
    ///   ``EventStoreError/Code/storageFailure`` when the server cannot be reached or refuses the
    ///   user, password or database; ``EventStoreError/Code/unknownFormat`` for a database of
    ///   another format or version. Nothing is written then.
    package static func open(
        _ location: PostgresLocation, createIfMissing: Bool = true, logger: Logger = .disabled
    ) async throws -> PostgresLog {
        let connection: PostgresConnection
        do {
            connection = try await connect(location, logger: logger).get()
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
        let log = PostgresLog(location: location, connection: connection, logger: logger)
        do {
            try await log.transaction(readOnly: false) { session in
                try session.execute("SELECT pg_advisory_xact_lock(?)", [.integer(Self.schemaLock)])
                if try Schema.check(session, name: location.description, kind: "a PostgreSQL database") == .empty {
                    guard createIfMissing else {
                        throw EventStoreError(
                            code: .storageFailure, message: "no log at \(location): the database holds no tables")
                    }
                    try PostgresSchema.create(session)
                }
            }
        } catch {
            await log.close()
            throw error
        }
        return log
    }

    static func connect(_ location: PostgresLocation, logger: Logger) -> EventLoopFuture<PostgresConnection> {
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        return PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 1, logger: logger)
    }

    /// Closes the connection.
    package func close() async {
        try? await connection.withLock { $0 }.close()
    }

    /// The open connection, a new one when the server closed the last (on the log's queue).
    private func openConnection() throws -> PostgresConnection {
        let current = connection.withLock { $0 }
        guard current.isClosed else { return current }
        logger.info("Reconnecting to PostgreSQL", metadata: ["ticketlog.database": "\(location)"])
        let fresh: PostgresConnection
        do {
            fresh = try Self.connect(location, logger: logger).wait()
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
        connection.withLock { $0 = fresh }
        return fresh
    }

    /// Runs `body` in one transaction on the log's queue: committed when it returns, rolled
    /// back when it throws. A read-only transaction is one snapshot (REPEATABLE READ).
    package func transaction<T: Sendable>(
        readOnly: Bool, _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        let begin = readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN"
                        var session = PostgresSession(
                            connection: try self.openConnection(), location: self.location, logger: self.logger)
                        do {
                            try session.execute(begin, [])
                        } catch  where session.connection.isClosed {
                            // The server closed the connection since the last transaction (a
                            // restart): nothing of this one was sent, so connect and begin again.
                            session = PostgresSession(
                                connection: try self.openConnection(), location: self.location, logger: self.logger)
                            try session.execute(begin, [])
                        }
                        do {
                            let result = try body(session)
                            try session.execute("COMMIT", [])
                            return result
                        } catch {
                            try? session.execute("ROLLBACK", [])
                            throw error
                        }
                    })
            }
        }
    }

    /// Recomputes the chain over the whole log, as ``EventStore/verify(anchor:progress:)`` does
    /// for a file (the same code, above the storage boundary).
    package func verify(
        anchor: ChainAnchor? = nil, progress: (@Sendable (VerificationProgress) -> Void)? = nil
    ) async throws -> VerificationReport {
        try await transaction(readOnly: true) { session in
            try LogVerifier.verify(session, anchor: anchor, progress: progress)
        }
    }

    /// The head the log records: its newest position and that event's chain hash.
    package func head() async throws -> (position: Int64, hash: [UInt8]) {
        try await transaction(readOnly: true) { session in
            let meta = LogTables(session)
            return (try meta.meta("head_position").integer ?? 0, try meta.meta("head_hash").blob ?? [])
        }
    }

    /// Copies the log of an SQLite file into this database, which must hold no events: one
    /// snapshot of the file, one transaction here.
    package func copy(
        from store: EventStore, progress: (@Sendable (_ table: String, _ rows: Int) -> Void)? = nil
    ) async throws -> LogCopy.Summary {
        try await transaction(readOnly: false) { target in
            try store.withReadSession { source in try LogCopy.copy(from: source, to: target, progress: progress) }
        }
    }

    /// Copies this log into a new SQLite file at `path` (its projections are built when the
    /// file is first opened).
    package func copy(
        toFile path: String, progress: (@Sendable (_ table: String, _ rows: Int) -> Void)? = nil
    ) async throws -> LogCopy.Summary {
        try await transaction(readOnly: true) { source in
            try EventStore.createLog(at: path) { target in
                try LogCopy.copy(from: source, to: target, progress: progress)
            }
        }
    }
}
