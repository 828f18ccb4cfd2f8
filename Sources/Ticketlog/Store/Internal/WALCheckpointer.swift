import Dispatch
import GRDB
import GRDBSQLite
import Synchronization

/// Checkpoints the log's WAL on a connection and thread of its own, so the writer mostly does
/// not.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the writer
/// copies tens of megabytes of WAL into the database file (and syncs it) while every append
/// waits — a fifth of the bench's batched append, more the bigger the rows (an encrypted log's
/// ciphertext). Here the writer's commit only reports the WAL's length (`sqlite3_wal_hook`,
/// which replaces the automatic checkpoint). From ``Thresholds/background`` on, a commit that
/// grew the WAL by ``Thresholds/backgroundStep`` frames since the last one has a passive
/// checkpoint run on this object's connection, beside the writer: it never waits for readers or
/// the writer, and copies what was committed before it started.
///
/// The WAL starts over only when a write transaction begins with every frame copied, which a
/// busy writer never sees (a checkpoint ends while the next transaction runs). So from
/// ``Thresholds/writer`` on, the commit checkpoints itself, as SQLite's automatic checkpoint would:
/// only the frames the background has not copied yet (about one transaction's), after which the
/// next transaction restarts the WAL. That also bounds the WAL when the background cannot
/// keep up or cannot open its connection. The two never run at once; ``exclusively(_:)`` is also
/// how the erasure's `TRUNCATE` checkpoint waits for a background one to end.
///
/// Durability is SQLite's: the checkpointing connection keeps the default `synchronous`
/// (FULL), which syncs the WAL before copying and the database file before the WAL is reused.
package final class WALCheckpointer: Sendable {
    package struct Thresholds: Sendable {
        /// The WAL length (frames, 4 KiB pages) from which commits have the background
        /// checkpoint: 40 MB, which SQLite's automatic checkpoint was set to before (a page
        /// changed by many transactions in between is copied once).
        package var background: Int32 = 10_000
        /// The WAL length from which the commit checkpoints itself (what is left) so that the
        /// WAL starts over.
        package var writer: Int32 = 20_000
        /// How much the WAL grows between two background checkpoints (frames): small commits
        /// (16 appenders at FULL: ~80 frames each) had a checkpoint each, with its two syncs —
        /// half the syncs of the run — and the pages they share copied again every time.
        package var backgroundStep: Int32 = 1_000
    }

    private struct Connection {
        var pointer: OpaquePointer?
        var failedToOpen = false
        var closed = false
    }

    private let path: String
    /// Held by whoever checkpoints: the background queue (its connection is only used under
    /// it), a commit past ``Thresholds/writer``, the erasure's scrub.
    private let connection = Mutex(Connection())
    /// Whether a background checkpoint is queued and not started yet: a commit only looks at
    /// this, it never waits for a background checkpoint to end.
    private let scheduled = Atomic(false)
    /// The WAL's length when the last background checkpoint was queued (0 after it started
    /// over).
    private let scheduledAt = Atomic<Int32>(0)
    private let queue = DispatchQueue(label: "ticketlog.wal-checkpoint", qos: .utility)
    private let thresholds: Thresholds
    private let runs = Atomic(0)

    init(path: String, thresholds: Thresholds) {
        self.path = path
        self.thresholds = thresholds
    }

    /// How many checkpoints ran on the background connection.
    package var backgroundCheckpoints: Int { runs.load(ordering: .relaxed) }

    /// Returns once the background checkpoint queued so far (if any) has run.
    package func waitForBackground() {
        queue.sync {}
    }

    deinit {
        // No checkpoint is queued any more (a queued one keeps `self`): no need to wait.
        closeConnection()
    }

    /// Closes the background connection (waiting for a checkpoint under way) and opens it no
    /// more. The store closes it before its own connections, so that the writer's is the last
    /// to close — the one that checkpoints the WAL and removes it.
    func close() {
        queue.sync { closeConnection() }
    }

    private func closeConnection() {
        connection.withLock { connection in
            if let pointer = connection.pointer { sqlite3_close_v2(pointer) }
            connection.pointer = nil
            connection.closed = true
        }
    }

    /// Installs the WAL hook on the writer's connection (which then makes no automatic
    /// checkpoint). `self` must outlive the connection: the pool's configuration, which opens
    /// it, keeps `self` (see ``EventStore``'s opening).
    func attach(to db: Database) {
        sqlite3_wal_hook(db.sqliteConnection, Self.hook, Unmanaged.passUnretained(self).toOpaque())
    }

    private static let hook:
        @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 = {
            context, writer, name, frames in
            guard let context else { return SQLITE_OK }
            Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue()
                .committed(frames: frames, writer: writer, name: name)
            return SQLITE_OK
        }

    /// After each of the writer's commits, with the WAL's length.
    private func committed(frames: Int32, writer: OpaquePointer?, name: UnsafePointer<CChar>?) {
        if frames >= thresholds.writer {
            exclusively { _ = sqlite3_wal_checkpoint_v2(writer, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil) }
        } else if frames >= thresholds.background {
            var last = scheduledAt.load(ordering: .relaxed)
            if frames < last {
                // The WAL started over since.
                last = 0
                scheduledAt.store(0, ordering: .relaxed)
            }
            guard frames - last >= thresholds.backgroundStep,
                scheduled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
            else { return }
            scheduledAt.store(frames, ordering: .relaxed)
            queue.async { [self] in checkpointInBackground() }
        }
    }

    private func checkpointInBackground() {
        connection.withLock { connection in
            scheduled.store(false, ordering: .relaxed)
            if connection.pointer == nil && !connection.failedToOpen && !connection.closed {
                var opened: OpaquePointer?
                if sqlite3_open_v2(path, &opened, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
                    // A first read puts the connection in WAL mode; before, a checkpoint does nothing.
                    sqlite3_exec(opened, "SELECT count(*) FROM sqlite_schema", nil, nil, nil) == SQLITE_OK
                {
                    connection.pointer = opened
                } else {
                    // The commits' own checkpoints (past the writer threshold) keep the WAL bounded.
                    sqlite3_close_v2(opened)
                    connection.failedToOpen = true
                }
            }
            guard let pointer = connection.pointer else { return }
            // Passive: busy (another process checkpointing) only means the next commit's turn.
            if sqlite3_wal_checkpoint_v2(pointer, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil) == SQLITE_OK {
                runs.add(1, ordering: .relaxed)
            }
        }
    }

    /// Runs `work` while no other checkpoint runs or starts.
    func exclusively<T>(_ work: () throws -> T) rethrows -> T {
        try connection.withLock { _ in try work() }
    }
}
