import Foundation
import GRDB

/// An error from the event log: a rejected append, a damaged file or a failing disk.
///
/// Each error has a ``code`` for programs and a ``message`` for people. Categories stay apart so
/// that a server can map them to statuses: ``Code/versionConflict`` (409), ``Code/invalidEvent``
/// (400), ``Code/duplicateEventID`` (409), ``Code/notFound`` (404), ``Code/rejected`` (422),
/// ``Code/corruptRecord`` and ``Code/unknownFormat`` (the file is not what it should be),
/// ``Code/storageFailure`` (503), ``Code/unsupported`` (501).
public struct EventStoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String, Hashable, Sendable {
            case versionConflict = "version_conflict"
            case duplicateEventID = "duplicate_event_id"
            case invalidEvent = "invalid_event"
            case corruptRecord = "corrupt_record"
            case unknownFormat = "unknown_format"
            case storageFailure = "storage_failure"
            case notFound = "not_found"
            case rejected = "rejected"
            case masterKey = "master_key"
            case unsupported = "unsupported"
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The stream is not at the version the append expected.
        public static let versionConflict = Code(.versionConflict)
        /// An event id is already stored with other content (or in a different batch).
        public static let duplicateEventID = Code(.duplicateEventID)
        /// The append itself is malformed: empty, too large, duplicate ids within one batch.
        public static let invalidEvent = Code(.invalidEvent)
        /// A stored record cannot be read back: bad compression, bad JSON, missing dictionary.
        public static let corruptRecord = Code(.corruptRecord)
        /// The file is not a ticketlog log, or one written by a newer format.
        public static let unknownFormat = Code(.unknownFormat)
        /// SQLite failed: disk full, read-only file, I/O error, busy.
        public static let storageFailure = Code(.storageFailure)
        /// A command named a ticket or message that does not exist.
        public static let notFound = Code(.notFound)
        /// A command does not hold in the ticket's current state (editing someone else's
        /// message, setting the status it already has...). The message says why.
        public static let rejected = Code(.rejected)
        /// The log's content is encrypted (issue 17) and the master key given to open it is
        /// missing or another one. Nothing was written.
        public static let masterKey = Code(.masterKey)
        /// The operation is not available on this log's backend (an operation PostgreSQL does
        /// not run yet, say). Nothing was read or written.
        public static let unsupported = Code(.unsupported)

        public var description: String { wrapped.rawValue }
    }

    public var code: Code
    public var message: String
    /// The log position the error is about, when there is one.
    public var position: Int64?
    /// For ``Code/versionConflict``: the version the stream is actually at (0: no stream).
    public var actualVersion: Int64?
    public var cause: (any Error)?

    public init(
        code: Code, message: String, position: Int64? = nil, actualVersion: Int64? = nil,
        cause: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.position = position
        self.actualVersion = actualVersion
        self.cause = cause
    }

    public var description: String {
        var text = message
        if let cause { text += " (\(cause))" }
        return text
    }
}

extension EventStoreError {
    static func corrupt(_ message: String, position: Int64?, cause: (any Error)? = nil) -> EventStoreError {
        EventStoreError(code: .corruptRecord, message: message, position: position, cause: cause)
    }

    /// An event row refers to a vocabulary row (`what`: "actor", "event type", "stream") that
    /// is not there.
    static func missingReference(_ what: String, _ key: Int64, position: Int64?) -> EventStoreError {
        .corrupt("an event refers to \(what) #\(key), which the log does not hold", position: position)
    }

    /// An actor row whose role this build does not know.
    static func unknownRole(_ role: String, actor key: Int64, position: Int64?) -> EventStoreError {
        .corrupt("actor #\(key) has the unknown role \(role.debugDescription)", position: position)
    }

    /// The stream is not at the version an append expected.
    static func versionConflict(_ stream: StreamID, at current: Int64, expected: ExpectedVersion) -> EventStoreError {
        EventStoreError(
            code: .versionConflict,
            message: "stream \(stream) is at version \(current), the append expected \(expected)",
            actualVersion: current)
    }

    /// An event row whose id is not 16 bytes.
    static func badEventID(bytes count: Int, position: Int64) -> EventStoreError {
        .corrupt("the event at position \(position) has an id of \(count) bytes, not 16", position: position)
    }

    /// A ``Code/storageFailure``: `message`, and what SQLite said in words a person can act on.
    static func storage(_ message: String, cause: any Error) -> EventStoreError {
        guard let database = cause as? DatabaseError else {
            return EventStoreError(code: .storageFailure, message: message, cause: cause)
        }
        let detail = database.message ?? "SQLite error \(database.extendedResultCode.rawValue)"
        let reason =
            switch database.resultCode {
            case .SQLITE_FULL: "the disk is full"
            case .SQLITE_IOERR: "the disk refused a read or write (\(detail))"
            case .SQLITE_READONLY: "the file is read-only"
            case .SQLITE_CORRUPT, .SQLITE_NOTADB: "the file is damaged (\(detail))"
            case .SQLITE_BUSY, .SQLITE_LOCKED: "another process holds a lock on the file"
            default: detail
            }
        return EventStoreError(code: .storageFailure, message: "\(message): \(reason)", cause: cause)
    }

    /// Part of an append is stored already and part is not: not a retry.
    static func partlyStored(_ id: UUID, at position: Int64) -> EventStoreError {
        EventStoreError(
            code: .duplicateEventID,
            message:
                "event \(id.uuidString.lowercased()) is already stored at position \(position), but other events of this append are not: an append is stored whole or not at all, so this is not a retry",
            position: position)
    }

    /// An event id stored with other content than the append carries.
    static func storedWithOtherContent(_ id: UUID, at position: Int64) -> EventStoreError {
        EventStoreError(
            code: .duplicateEventID,
            message:
                "event \(id.uuidString.lowercased()) is already stored at position \(position) with other content",
            position: position)
    }

    package static func invalid(_ message: String) -> EventStoreError {
        EventStoreError(code: .invalidEvent, message: message)
    }
}
