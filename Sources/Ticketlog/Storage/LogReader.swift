import Synchronization

/// Reads events through a session of either backend and decodes them, keeping the vocabulary
/// (streams, types, actors) and LZ4 dictionaries it has seen: a page of a subscription decodes
/// against them, and an event naming a key it does not know yet reads only the rows added since.
///
/// Sealed fields are left sealed: the reader has no keyring.
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

    package init() {}

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
        let rows = try session.rows("SELECT \(LogTables.eventColumns) FROM events e WHERE \(condition)", arguments)
        return try decode(rows, session).map(\.event)
    }

    /// Decodes event rows (``LogTables/eventColumns``), reading the vocabulary rows and
    /// dictionaries added since the last read once when a row names one not known yet.
    private func decode(_ rows: [SQLRow], _ session: any SQLSession) throws -> [ProjectedEvent] {
        let tables = LogTables(session)
        var known = self.known.withLock { $0 }
        var refreshed = false
        var events: [ProjectedEvent] = []
        events.reserveCapacity(rows.count)
        for values in rows {
            guard let row = StoredEventRow(values) else {
                throw EventStoreError.corrupt(
                    "an event row\(events.last.map { " after position \($0.event.position)" } ?? "") has a NULL or wrongly typed column",
                    position: nil)
            }
            if !known.covers(row) && !refreshed {
                try tables.extend(&known.vocabulary)
                known.dictionaries = try tables.dictionaries()
                refreshed = true
            }
            let event = try EventStore.decodeRecord(
                stored: try row.storedBody(dictionaries: known.dictionaries),
                columns: try known.vocabulary.columns(of: row), position: row.position, version: row.version)
            events.append(ProjectedEvent(event: event, streamKey: row.stream))
        }
        if refreshed { self.known.withLock { $0 = known } }
        return events
    }
}
