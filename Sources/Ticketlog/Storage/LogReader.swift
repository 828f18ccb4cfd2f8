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
        let tables = LogTables(session)
        var known = self.known.withLock { $0 }
        var refreshed = false
        var events: [ProjectedEvent] = []
        for values in try tables.events(after: position - 1, limit: limit) {
            guard let row = StoredEventRow(values) else {
                throw EventStoreError.corrupt(
                    "an event row after position \(events.last?.event.position ?? position - 1) has a NULL or wrongly typed column",
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

    /// Up to `limit` events from `position` on (inclusive), in position order.
    package func events(_ session: any SQLSession, from position: Int64, limit: Int) throws -> [RecordedEvent] {
        try projected(session, from: position, limit: limit).map(\.event)
    }
}
