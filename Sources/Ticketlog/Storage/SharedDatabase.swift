/// A database server holding a log that several processes append to at once (PostgreSQL, in
/// `TicketlogPostgres`): what an ``EventStore`` opened on it needs of the backend. The format
/// code above it — appends (``LogWriter``), reads, projections, verification — is the same as
/// for a file, written over ``SQLSession``.
package protocol SharedDatabase: Sendable {
    /// How the log is named in messages (a URL without its password).
    var name: String { get }
    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws. A
    /// read-only transaction is one snapshot.
    func transaction<T: Sendable>(readOnly: Bool, _ body: @escaping @Sendable (any SQLSession) throws -> T)
        async throws -> T
    /// Starts advancing `notifier` to the head each time any process commits (once; later calls
    /// do nothing). Subscribers read by position; this only wakes them.
    func startListening(_ notifier: CommitNotifier)
    /// Whether `error` says the server is away for now (restarting, unreachable) rather than
    /// refusing what was asked: a subscription waits and reads again then.
    func isUnavailable(_ error: any Error) -> Bool
    /// Runs `body` while this process holds the session lock `key` — one process at a time
    /// among all that share the database: waits until it gets it, runs `body`, and when the
    /// lock's connection is lost (the server restarted, the network failed) cancels `body`,
    /// waits for it to end, and waits for the lock again — as it does when `body` fails because
    /// the server went away. Returns when the calling task is cancelled (after `body` ended) or
    /// when `body` returns, or throws anything else, on its own.
    func whileHoldingLock(_ key: Int64, _ body: @escaping @Sendable () async throws -> Void) async throws
    /// Runs `statements` one after the other outside any transaction (maintenance that cannot
    /// run inside one: `VACUUM`, `REINDEX … CONCURRENTLY`).
    func maintain(_ statements: [String]) async throws
    /// Closes the connections and stops listening.
    func close() async
}

/// An ``EventStore``'s state on a shared database.
struct SharedStorage: Sendable {
    let database: any SharedDatabase
    /// Appends; `nil` for a log holding encrypted content opened without its master key.
    let writer: LogWriter?
    /// Decodes events for reads and subscriptions, keeping the vocabulary it has seen; opens
    /// sealed content with the store's keyring.
    let reader: LogReader
}
