import Foundation
import GRDB
import Synchronization

/// An append, validated and encoded outside the write transaction (so concurrent appenders
/// encode and compress in parallel); the writer only chains and inserts.
package struct PreparedAppend: Sendable {
    struct Event: Sendable {
        var proposed: ProposedEvent
        /// The canonical JSON: what the chain hashes.
        var canonical: [UInt8]
        /// The stored body (``StoredBody``), compressed with `codec`.
        var codec: Int64
        var blob: [UInt8]
        /// The event's Merkle leaf, hashed up to its position.
        var leaf: StoredBody.LeafHasher
        /// Content keys made for this event's sealed fields whose rows are not written yet.
        var newKeys: [ContentKey] = []
        /// The id of the content key its personal fields are sealed with, if any.
        var sealedWith: String?
    }

    var stream: StreamID
    var expectedVersion: ExpectedVersion
    var recordedAt: Timestamp
    var events: [Event]
    /// The keyring's ``ContentKeyring/erasureGeneration`` before its events were sealed: while
    /// it has not changed, none of them holds an erased key.
    var keyringGeneration = 0
    /// For an append decided inside the write transaction (a command): called in the writer
    /// with the stream's version as the transaction has it, it returns the events and the
    /// version they expect (encoded there, then written as any other append), or throws
    /// ``DecidedNothing`` when nothing is to be written. It reads (and may write sync marks)
    /// through the writer's session: SQLite's on a file (the erasures' decisions rely on it),
    /// the shared database's in ``LogWriter``.
    var decide: (@Sendable (any SQLSession, _ version: Int64) throws -> [ProposedEvent])?
    /// Whether `decide` writes only through the session it is given (a command's sync marks),
    /// so that a savepoint opened at its first write there covers all it writes. An erasure's
    /// writes around it (the search index, through the connection): its savepoint is opened
    /// before it runs.
    var decisionWritesThroughSession = false
}

/// A decided append that writes nothing (the command changes nothing): the stream's version.
struct DecidedNothing: Error {
    var version: Int64
}

extension UUID {
    /// The 16 bytes of the UUID, as the `events.id` column stores them.
    var databaseBytes: Data {
        withUnsafeBytes(of: uuid) { Data($0) }
    }

    /// The UUID in an `events.id` column; `nil` unless it holds 16 bytes.
    init?(databaseBytes bytes: Data) {
        guard let uuid = bytes.withUnsafeBytes(UUID.init(databaseBytes:)) else { return nil }
        self = uuid
    }

    /// ``init(databaseBytes:)-(Data)`` from the bytes a row read holds (no `Data` made on the
    /// way: every event of a verify, rebuild or export goes through here).
    init?(databaseBytes bytes: [UInt8]) {
        guard let uuid = bytes.withUnsafeBytes(UUID.init(databaseBytes:)) else { return nil }
        self = uuid
    }

    /// The same from bytes where SQLite holds them.
    init?(databaseBytes bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 16 else { return nil }
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: bytes) }
        self.init(uuid: uuid)
    }
}

/// An append in the writer's queue: prepared, or still being prepared by the task that queued it
/// (``EventStore/append(_:)-([StreamAppend])`` queues a whole call's appends first, then encodes
/// them one by one while the writer already writes the first ones; the writer waits for each in
/// turn).
enum QueuedAppend: Sendable {
    case prepared(PreparedAppend)
    case promised(PromisedAppend)

    /// The prepared append, or why it could not be prepared; blocks the calling thread until
    /// it is ready (the SQLite writer's own queue waits so).
    func waitPrepared() -> Result<PreparedAppend, EventStoreError> {
        switch self {
        case .prepared(let append): .success(append)
        case .promised(let promise): promise.wait()
        }
    }

}

/// An append its caller is preparing while the writer may already wait for it. The caller
/// fulfils every promise it queued, once (``EventStore/append(_:)-([StreamAppend])`` does so on
/// every path: its preparing loop never suspends).
final class PromisedAppend: Sendable {
    private let state = Mutex<Result<PreparedAppend, EventStoreError>?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func fulfil(_ value: Result<PreparedAppend, EventStoreError>) {
        state.withLock { state in
            precondition(state == nil, "an append promise is fulfilled once")
            state = value
        }
        ready.signal()
    }

    /// Blocks the calling thread until the append is prepared.
    func wait() -> Result<PreparedAppend, EventStoreError> {
        if let value = state.withLock({ $0 }) { return value }
        ready.wait()
        ready.signal()
        return state.withLock { $0! }
    }
}
