import Foundation
import GRDB
import Synchronization

extension EventStore {
    /// Decides what to append to `stream` from the ticket as the write transaction sees it, and
    /// appends it, in one turn of the writer: nothing can be appended to the ticket between what
    /// `decide` reads and what it returns, so there is no version to check and nothing to retry.
    ///
    /// `decide` runs on the writer, inside the transaction that appends its events (shared with
    /// other appends of the same group commit, each of which it sees): keep it short, and do not
    /// wait in it. It may run more than once only if the caller calls `transact` again; it is
    /// never retried by the store. Its events are validated and encoded as by
    /// ``append(_:to:expectedVersion:)-([ProposedEvent],_,_)``; returning none appends nothing.
    ///
    /// ```swift
    /// // Post a message unless the author already posted one with this id.
    /// let outcome = try await store.transact(ticket) { ticket in
    ///     guard ticket.version > 0 else { throw EventStoreError(code: .notFound, message: "no ticket \(ticket.stream)") }
    ///     if try ticket.message("m-1") != nil { return [] }
    ///     return [ProposedEvent(actor: kim, payload: .messagePosted(MessagePosted(messageID: "m-1", text: "Hello")))]
    /// }
    /// // outcome.events: the events as recorded (positions, versions, times); outcome.streamVersion.
    /// ```
    ///
    /// - Parameters:
    ///   - stream: the ticket; it need not exist yet (then ``TicketTransaction/version`` is 0).
    ///   - decide: reads the ticket through ``TicketTransaction`` and returns the events to
    ///     append, or throws to append nothing (the error is rethrown).
    /// - Returns: the events as recorded, and the stream's version after them.
    /// - Throws: what `decide` throws; ``EventStoreError`` as ``append(_:to:expectedVersion:)-([ProposedEvent],_,_)``
    ///   throws it (an invalid event, a duplicate id, a storage failure).
    @discardableResult
    public func transact(
        _ stream: StreamID, _ decide: @escaping @Sendable (TicketTransaction) throws -> [ProposedEvent]
    ) async throws -> CommandOutcome {
        let decided = Mutex<[ProposedEvent]>([])
        let request = PreparedAppend(
            stream: stream, expectedVersion: .any, recordedAt: configuration.clock(), events: [],
            decide: { session, version in
                let events: [ProposedEvent]
                do {
                    events = try decide(
                        TicketTransaction(reads: self.ticketReads(session), stream: stream, version: version))
                } catch let error as EventStoreError {
                    throw error
                } catch {
                    // Fails this append alone, not the transaction it shares with others.
                    throw TransactFailure(cause: error)
                }
                guard !events.isEmpty else { throw DecidedNothing(version: version) }
                decided.withLock { $0 = events }
                return events
            }, decisionWritesThroughSession: true)
        let result: AppendResult
        do {
            result = try await committer.submit(.prepared(request), weight: 1)
        } catch let nothing as DecidedNothing {
            return CommandOutcome(events: [], streamVersion: nothing.version)
        } catch let failure as TransactFailure {
            throw failure.cause
        }
        let events = decided.withLock { $0 }
        return CommandOutcome(
            events: try await recorded(events, stream: stream, result), streamVersion: result.streamVersion,
            wasAlreadyStored: result.wasAlreadyStored)
    }

    /// The events as the append recorded them: built from the append's result (positions,
    /// versions, recording time) exactly as a read would return them, without reading them back.
    func recorded(_ events: [ProposedEvent], stream: StreamID, _ result: AppendResult) async throws
        -> [RecordedEvent]
    {
        guard let recorded = Self.recorded(events, stream: stream, result) else {
            return try await readAll(from: result.positions.lowerBound, limit: events.count)
        }
        return recorded
    }

    /// The events as a fresh append recorded them; `nil` for a retry (read them back instead).
    package static func recorded(_ events: [ProposedEvent], stream: StreamID, _ result: AppendResult)
        -> [RecordedEvent]?
    {
        guard let recordedAt = result.recordedAt, !result.wasAlreadyStored else { return nil }
        let firstVersion = result.streamVersion - Int64(events.count) + 1
        return events.enumerated().map { index, event in
            EventBody(event, stream: stream, recordedAt: recordedAt).recorded(
                position: result.positions.lowerBound + Int64(index), version: firstVersion + Int64(index))
        }
    }
}

/// What a decision of ``EventStore/transact(_:_:)`` threw that is not an ``EventStoreError``:
/// carried out of the writer and rethrown to the caller.
struct TransactFailure: Error {
    var cause: any Error
}

/// A ticket as the write transaction of ``EventStore/transact(_:_:)`` sees it: the appends
/// committed before it, those of the same transaction included, and nothing after.
///
/// Valid only inside the `decide` closure it is passed to (it reads through the writer's
/// connection; it is not `Sendable`).
public struct TicketTransaction {
    /// The projections and events, read through the writer's session (either backend).
    private let reads: TicketReads
    /// The ticket.
    public let stream: StreamID
    /// The ticket's version (the version of its last event); 0 when it has no events yet.
    public let version: Int64
    private var session: any SQLSession { reads.session }

    init(reads: TicketReads, stream: StreamID, version: Int64) {
        self.reads = reads
        self.stream = stream
        self.version = version
    }

    /// The ticket's summary; `nil` when it has no events.
    public func summary() throws -> TicketSummary? {
        try reading { try reads.summary(stream) }
    }

    /// The commands' facts, in one statement: the ticket's status and who it belongs to ("open"
    /// and no parties before the summary has a row), without the counts a summary makes; and
    /// with `messageID`, that message's author and whether it is deleted (`nil`: no such
    /// message) — not its text, which no command needs.
    func commandFacts(message messageID: String?) throws
        -> (status: String, parties: TicketParties?, message: (author: String, deleted: Bool)?)
    {
        try reading {
            let row: SQLRow?
            if let messageID {
                row = try session.row(
                    """
                    SELECT t.status, t.brand, t.creator, t.agent, m.author, m.deleted_at IS NOT NULL
                    FROM streams s
                    LEFT JOIN ticket_summaries t ON t.stream = s.key
                    LEFT JOIN messages m ON m.stream = s.key AND m.message_id = ?
                    WHERE s.name = ?
                    """,
                    [.text(messageID), .text(stream.rawValue)])
            } else {
                row = try session.row(
                    """
                    SELECT t.status, t.brand, t.creator, t.agent
                    FROM ticket_summaries t JOIN streams s ON s.key = t.stream WHERE s.name = ?
                    """,
                    [.text(stream.rawValue)])
            }
            guard let row else { return ("open", nil, nil) }
            let message = messageID != nil ? row[4].text.map { ($0, row[5].integer == 1) } : nil
            guard let status = row[0].text else { return ("open", nil, message) }
            return (status, TicketParties(brand: row[1].text, creator: row[2].text, agent: row[3].text), message)
        }
    }

    /// The members of the ticket's channel, in joining order.
    public func members() throws -> [TicketState.Member] {
        try reading { try reads.members(of: stream) }
    }

    /// Whether `user` is a member of the ticket's channel.
    public func isMember(_ user: String) throws -> Bool {
        try reading { try reads.isMember(user, of: stream) }
    }

    /// The ticket's message `messageID` with edits and deletes applied; `nil` when there is none.
    public func message(_ messageID: String) throws -> TicketState.Message? {
        try reading { try reads.message(messageID, in: stream) }
    }

    /// A page of the ticket's messages, as ``EventStore/messages(of:from:direction:limit:includeDeleted:)``
    /// reads them (forwards by position).
    public func messages(after position: Int64 = 0, limit: Int = 500, includeDeleted: Bool = true) throws
        -> [TicketState.Message]
    {
        try reading {
            try reads.messages(
                of: stream, from: .position(position), direction: .forwards, limit: limit,
                includeDeleted: includeDeleted)
        }
    }

    /// The event at `position`, in any stream; `nil` when there is none.
    public func event(at position: Int64) throws -> RecordedEvent? {
        try reading {
            guard try session.row("SELECT 1 FROM events WHERE position = ?", [.integer(position)]) != nil else {
                return nil
            }
            return try reads.event(position)
        }
    }

    /// `destination`'s sync mark for `key` (``EventStore/syncMark(_:key:)``), as this transaction sees it.
    public func syncMark(_ destination: String, key: String) throws -> Int64? {
        try reading { try SyncMarks.mark(destination, key: key, session) }
    }

    /// Raises `destination`'s sync mark for `key` (``EventStore/raiseSyncMark(_:key:to:)``) in
    /// this transaction: it is kept only if the decision's events are appended (or it decides on
    /// none), never without them.
    public func raiseSyncMark(_ destination: String, key: String, to value: Int64) throws -> Bool {
        try reading { try SyncMarks.raise(destination, key: key, to: value, session) }
    }

    /// The event with this id, in any stream; `nil` when there is none.
    public func event(id: UUID) throws -> RecordedEvent? {
        try reading {
            guard
                let position = try session.value(
                    "SELECT position FROM events WHERE id = ?", [.blob(Array(id.databaseBytes))]
                ).integer
            else { return nil }
            return try reads.event(position)
        }
    }

    private func reading<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw EventStore.mapStorageError(error, "reading the ticket in the write transaction failed")
        }
    }
}
