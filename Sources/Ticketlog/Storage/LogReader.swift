import Synchronization

/// Reads events through a session of either backend and decodes them, keeping the vocabulary
/// (streams, types, actors) and LZ4 dictionaries it has seen: a page of a subscription decodes
/// against them, and an event naming a key it does not know yet reads only the rows added since.
///
/// Decoded events come with their sealed fields opened by the keyring it was given (as erased
/// when their key is destroyed), or left sealed without one; stored events are never opened.
package final class LogReader: Sendable {
    private struct Known {
        var vocabulary = LogVocabulary()
        var dictionaries: [Int64: LZ4Dictionary] = [:]

        func covers(_ row: StoredEventRow) -> Bool {
            let dictionary = BodyCodec.dictionaryID(row.codec)
            return vocabulary.streams[row.stream] != nil && vocabulary.types[row.type] != nil
                && vocabulary.actors[row.actor] != nil
                && (dictionary == BodyCodec.uncompressed || dictionaries[dictionary] != nil)
        }
    }

    private let known = Mutex(Known())
    private let keyring: ContentKeyring?

    package init(keyring: ContentKeyring? = nil) {
        self.keyring = keyring
    }

    /// Up to `limit` events from `position` on (inclusive), in position order, each with its
    /// stream's key.
    func projected(_ session: any SQLSession, from position: Int64, limit: Int) throws -> [ProjectedEvent] {
        try decode(try LogTables(session).events(after: position - 1, limit: limit), session)
    }

    /// Up to `limit` events from `position` on (inclusive), in position order.
    package func events(_ session: any SQLSession, from position: Int64, limit: Int) throws -> [RecordedEvent] {
        try projected(session, from: position, limit: limit).map(\.event)
    }

    /// The events `SELECT … FROM events e WHERE condition` finds, in the order it gives them
    /// (`condition` may end in `ORDER BY … LIMIT ?`).
    func events(_ session: any SQLSession, where condition: String, _ arguments: [SQLValue]) throws
        -> [RecordedEvent]
    {
        let rows = try session.eventRows(
            "SELECT \(LogTables.eventColumns) FROM events e WHERE \(condition)", arguments)
        return try decode(rows, session).map(\.event)
    }

    /// The stored events (bodies decompressed, columns resolved, not decoded) that
    /// `SELECT … FROM events e WHERE condition` finds, in its order: what the Merkle tree hashes.
    func stored(_ session: any SQLSession, where condition: String, _ arguments: [SQLValue]) throws
        -> [EventStore.StoredEvent]
    {
        let rows = try session.eventRows(
            "SELECT \(LogTables.eventColumns) FROM events e WHERE \(condition)", arguments)
        return try parts(rows, session).map(\.stored)
    }

    /// Decodes event rows (``LogTables/eventColumns``).
    private func decode(_ rows: [StoredEventRow?], _ session: any SQLSession) throws -> [ProjectedEvent] {
        // Another node's erasures since the last read are applied before anything is opened.
        if let keyring, !rows.isEmpty { try keyring.refresh(session, name: "the log") }
        return try parts(rows, session).map { part in
            var event = try EventStore.decodeRecord(
                stored: part.stored.stored, columns: part.stored.columns, position: part.stored.position,
                version: part.stored.version)
            if let keyring { event = try keyring.open(event, session) }
            return ProjectedEvent(event: event, streamKey: part.streamKey)
        }
    }

    /// Event rows (``LogTables/eventColumns``) as stored events with their streams' keys,
    /// reading the vocabulary rows and dictionaries added since the last read once when a row
    /// names one not known yet.
    private func parts(_ rows: [StoredEventRow?], _ session: any SQLSession) throws
        -> [(stored: EventStore.StoredEvent, streamKey: Int64)]
    {
        let tables = LogTables(session)
        var known = self.known.withLock { $0 }
        var refreshed = false
        var parts: [(stored: EventStore.StoredEvent, streamKey: Int64)] = []
        parts.reserveCapacity(rows.count)
        for row in rows {
            guard let row else {
                throw EventStoreError.corrupt(
                    "an event row\(parts.last.map { " after position \($0.stored.position)" } ?? "") has a NULL or wrongly typed column",
                    position: nil)
            }
            if !known.covers(row) && !refreshed {
                try tables.extend(&known.vocabulary)
                known.dictionaries = try tables.dictionaries()
                refreshed = true
            }
            parts.append(
                (
                    EventStore.StoredEvent(
                        position: row.position, version: row.version,
                        stored: try row.storedBody(dictionaries: known.dictionaries),
                        columns: try known.vocabulary.columns(of: row)),
                    row.stream
                ))
        }
        if refreshed { self.known.withLock { $0 = known } }
        return parts
    }
}
