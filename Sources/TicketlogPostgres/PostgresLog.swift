import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization
import Ticketlog

/// A log in a PostgreSQL database, as ``EventStore`` sees it (``SharedDatabase``): the same
/// tables, bodies, dictionaries and chain as the SQLite file, behind the same storage boundary
/// (ARCHITECTURE.md, "Storage boundary"). Open one with
/// ``Ticketlog/EventStore/open(_:createIfMissing:configuration:catchUpProjections:logger:)``.
///
/// Connections in lanes: one for write transactions, up to `readers` more for read-only ones
/// (``EventStore/Configuration/maximumReaders``; each opened on first use), so that reads do not
/// wait behind writes. Each lane runs its transactions one at a time on a queue of its own,
/// which blocks on the connection's futures (the format code above the boundary is synchronous);
/// a read goes to the reading lane with the fewest transactions waiting. When the server goes
/// away, the transaction in flight fails with ``EventStoreError/Code/storageFailure`` (nothing
/// it wrote is committed) and the lane's next one connects again. Notifications of other
/// nodes' commits arrive on one more connection, opened by the first subscription.
package final class PostgresLog: SharedDatabase {
    package let location: PostgresLocation
    let logger: Logger
    /// Where write transactions run.
    private let writing: Lane
    /// Where read-only transactions run.
    private let reading: [Lane]

    /// One connection and the queue its transactions run on, one at a time.
    private final class Lane: Sendable {
        let queue: DispatchQueue
        /// `nil` until the lane's first transaction; replaced by a new one when the server
        /// closed it (a restart, a network failure), at the start of the next transaction.
        let connection: Mutex<PostgresConnection?>
        /// Transactions waiting for the lane or running on it.
        let load = Mutex(0)

        init(_ label: String, connection: PostgresConnection?) {
            queue = DispatchQueue(label: label)
            self.connection = Mutex(connection)
        }
    }

    /// The key of the transaction-scoped advisory lock that creating the schema takes, so that
    /// nodes started together create it once.
    static let schemaLock: Int64 = 0x7469_636b_6574_6c67  // "ticketlg"

    /// The task that listens for commits, started by the first subscription.
    private let listener = Mutex<Task<Void, Never>?>(nil)

    private init(location: PostgresLocation, connection: PostgresConnection, readers: Int, logger: Logger) {
        self.location = location
        self.logger = logger
        writing = Lane("ticketlog.postgres.\(location.database).write", connection: connection)
        reading = (0..<max(1, readers)).map {
            Lane("ticketlog.postgres.\(location.database).read-\($0)", connection: nil)
        }
    }

    package var name: String { location.description }

    /// Connects (one line naming the database and what went wrong when it cannot); reads use up
    /// to `readers` more connections.
    static func connecting(_ location: PostgresLocation, readers: Int, logger: Logger) async throws -> PostgresLog {
        let connection: PostgresConnection
        do {
            connection = try await connect(location, logger: logger).get()
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
        if location.tls == .disable && !location.isLoopback {
            logger.warning(
                "The connection to PostgreSQL is not encrypted: add ?sslmode=verify-full to the URL",
                metadata: ["ticketlog.database": "\(location)"])
        }
        return PostgresLog(location: location, connection: connection, readers: readers, logger: logger)
    }

    static func connect(_ location: PostgresLocation, logger: Logger) throws -> EventLoopFuture<PostgresConnection> {
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try tls(location))
        return PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 1, logger: logger)
    }

    /// The connection's TLS as the URL's `sslmode` and `sslrootcert` ask (libpq's meaning).
    static func tls(_ location: PostgresLocation) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch location.tls {
        case .disable: return .disable
        case .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        if let root = location.rootCertificate {
            guard FileManager.default.isReadableFile(atPath: root) else {
                throw EventStoreError(
                    code: .storageFailure,
                    message: "PostgreSQL at \(location): cannot read the certificate authority file \(root)")
            }
            configuration.trustRoots = .file(root)
        }
        do {
            return .require(try NIOSSLContext(configuration: configuration))
        } catch {
            throw EventStoreError(
                code: .storageFailure, message: "PostgreSQL at \(location): cannot set up TLS: \(error)", cause: error)
        }
    }

    /// A log released without ``close()`` (a caller that threw on the way) still closes its
    /// connections; each is kept until it has.
    deinit {
        listener.withLock { $0?.cancel() }
        for lane in [writing] + reading {
            if let connection = lane.connection.withLock({ $0 }), !connection.isClosed {
                connection.close().whenComplete { _ in _ = connection }
            }
        }
    }

    /// Closes the connections and stops listening for notifications.
    package func close() async {
        if let listening = listener.withLock({ task in
            defer { task = nil }
            return task
        }) {
            listening.cancel()
            await listening.value
        }
        for lane in [writing] + reading {
            try? await lane.connection.withLock { $0 }?.close()
        }
    }

    /// The lane's open connection, a new one when there is none yet or the server closed the
    /// last (on the lane's queue).
    private func openConnection(_ lane: Lane) throws -> PostgresConnection {
        let current = lane.connection.withLock { $0 }
        if let current, !current.isClosed { return current }
        if current != nil {
            logger.info("Reconnecting to PostgreSQL", metadata: ["ticketlog.database": "\(location)"])
        }
        let fresh: PostgresConnection
        do {
            fresh = try Self.connect(location, logger: logger).wait()
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
        lane.connection.withLock { $0 = fresh }
        return fresh
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. A
    /// read-only transaction is one snapshot (REPEATABLE READ) on a reading connection.
    package func transaction<T: Sendable>(
        readOnly: Bool, _ body: @escaping @Sendable (any SQLSession) throws -> T
    ) async throws -> T {
        let lane = readOnly ? reading.min { $0.load.withLock { $0 } < $1.load.withLock { $0 } }! : writing
        lane.load.withLock { $0 += 1 }
        defer { lane.load.withLock { $0 -= 1 } }
        return try await withCheckedThrowingContinuation { continuation in
            lane.queue.async {
                continuation.resume(
                    with: Result {
                        let begin = readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN"
                        var session = PostgresSession(
                            connection: try self.openConnection(lane), location: self.location, logger: self.logger)
                        do {
                            try session.execute(begin, [])
                        } catch  where session.connection.isClosed {
                            // The server closed the connection since the last transaction (a
                            // restart): nothing of this one was sent, so connect and begin again.
                            session = PostgresSession(
                                connection: try self.openConnection(lane), location: self.location,
                                logger: self.logger)
                            try session.execute(begin, [])
                        }
                        do {
                            let result = try body(session)
                            try session.execute("COMMIT", [])
                            return result
                        } catch {
                            session.discardPending()
                            _ = try? session.execute("ROLLBACK", [])
                            throw error
                        }
                    })
            }
        }
    }

    /// On a connection of its own, closed afterwards: a `REINDEX … CONCURRENTLY` of a large
    /// index takes a while, and this node's appends go on meanwhile.
    package func maintain(_ statements: [String]) async throws {
        let connection: PostgresConnection
        do {
            connection = try await Self.connect(location, logger: logger).get()
        } catch {
            throw PostgresErrors.translate(error, location: location)
        }
        do {
            for statement in statements {
                // Read to the end: the statement is done when its rows (none) are.
                for try await _ in try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) {}
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw PostgresErrors.translate(error, location: location)
        }
    }

    package func startListening(_ notifier: CommitNotifier) {
        listener.withLock { task in
            guard task == nil else { return }
            task = Task { [location, logger] in
                await Self.listen(location: location, logger: logger, notifier: notifier)
            }
        }
    }

    package func isUnavailable(_ error: any Error) -> Bool { PostgresErrors.isUnavailable(error) }

    /// Holds the lock on a connection of its own (`pg_try_advisory_lock`, tried each second
    /// until it is free): the server frees it when that connection ends, so a process killed
    /// while holding it hands over as soon as the server sees its socket close. The connection
    /// is watched four times a second; once it has closed, `body` is cancelled.
    package func whileHoldingLock(_ key: Int64, _ body: @escaping @Sendable () async throws -> Void) async throws {
        while !Task.isCancelled {
            let connection: PostgresConnection
            do {
                connection = try await Self.connect(location, logger: logger).get()
            } catch {
                logger.warning(
                    "Cannot reach PostgreSQL to take a lock; trying again",
                    metadata: [
                        "ticketlog.database": "\(location)",
                        "ticketlog.error": "\(PostgresErrors.translate(error, location: location).message)",
                    ])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            var held = false
            do {
                let rows = try await connection.query("SELECT pg_try_advisory_lock(\(key))", logger: logger)
                for try await value in rows.decode(Bool.self) { held = value }
            } catch {
                held = false
            }
            guard held else {
                Task { try? await connection.close() }
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            logger.info("This process took the lock", metadata: ["ticketlog.lock": "\(key)"])
            let finished = Mutex(false)
            let work = Task {
                defer { finished.withLock { $0 = true } }
                try await body()
            }
            while !connection.isClosed, !finished.withLock({ $0 }), !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
            }
            let lost = connection.isClosed && !finished.withLock { $0 }
            work.cancel()
            let outcome = await work.result
            // Closing the connection frees the lock; not waited for (postgres-nio#487).
            Task { try? await connection.close() }
            if lost && !Task.isCancelled {
                logger.warning(
                    "The connection holding the lock closed: the work stopped, waiting for the lock again",
                    metadata: ["ticketlog.database": "\(location)", "ticketlog.lock": "\(key)"])
                continue
            }
            // The work failed because the server went away (a restart): it is taken up again
            // once the lock is, here or on another node, rather than ending for good.
            if case .failure(let error) = outcome, PostgresErrors.isUnavailable(error), !Task.isCancelled {
                logger.warning(
                    "The work holding the lock stopped while PostgreSQL was away; waiting for the lock again",
                    metadata: [
                        "ticketlog.database": "\(location)", "ticketlog.lock": "\(key)", "ticketlog.error": "\(error)",
                    ])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            return try outcome.get()
        }
    }

    /// Holds a connection listening on `ticketlog_events` until cancelled, connecting again a
    /// second after it is lost; after each (re)connection the head is read once, so what was
    /// committed while nobody listened wakes the subscribers too.
    private static func listen(location: PostgresLocation, logger: Logger, notifier: CommitNotifier) async {
        while !Task.isCancelled {
            do {
                let connection = try await connect(location, logger: logger).get()
                // A connection the server dropped does not always end the notifications, and a
                // statement sent as it closed may never be answered (postgres-nio#487): so the
                // listening runs in a task of its own that is watched, and left behind — not
                // waited for — once its connection closes.
                let ended = Mutex<(any Error)?>(nil)
                let finished = Mutex(false)
                let listening = Task {
                    do {
                        try await connection.listen(on: "ticketlog_events") { notifications in
                            let head = try await connection.query(
                                "SELECT integer FROM meta WHERE key = 'head_position'", logger: logger)
                            for try await position in head.decode(Int64.self) { notifier.advance(to: position) }
                            for try await notification in notifications {
                                if let position = Int64(notification.payload) { notifier.advance(to: position) }
                            }
                        }
                    } catch {
                        ended.withLock { $0 = error }
                    }
                    finished.withLock { $0 = true }
                }
                while !connection.isClosed, !finished.withLock({ $0 }), !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                }
                listening.cancel()
                if !Task.isCancelled {
                    logger.warning(
                        "Listening for new events on PostgreSQL stopped; connecting again",
                        metadata: [
                            "ticketlog.database": "\(location)",
                            "ticketlog.error": "\(ended.withLock { $0 }.map { "\($0)" } ?? "the connection closed")",
                        ])
                }
                // Not waited for either: closing waits for the statements sent before it.
                Task { try? await connection.close() }
            } catch {
                logger.warning(
                    "Cannot listen for new events on PostgreSQL; trying again",
                    metadata: [
                        "ticketlog.database": "\(location)",
                        "ticketlog.error": "\(PostgresErrors.translate(error, location: location).message)",
                    ])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
