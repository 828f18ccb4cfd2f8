import Foundation
import GRDB

/// The size and content of a log.
public struct LogStatistics: Sendable {
    public var events: Int64
    public var tickets: Int64
    /// Events per type, most frequent first.
    public var eventsByType: [(type: String, count: Int64)]
    /// The database file plus its WAL, in bytes (0 in memory).
    public var fileBytes: Int64
    /// The pages of the events table and its indexes.
    public var eventBytes: Int64
    /// The pages of projection tables and their indexes.
    public var projectionBytes: Int64
    /// The stored bodies of all events uncompressed: their canonical JSON without the members
    /// the rows' columns hold.
    public var rawBodyBytes: Int64
    /// The stored bodies (compressed where a dictionary applies).
    public var storedBodyBytes: Int64
    /// Events stored uncompressed (before the first dictionary, or incompressible).
    public var uncompressedEvents: Int64
    public var dictionaries: Int64

    /// Uncompressed over stored body bytes.
    public var compressionRatio: Double { storedBodyBytes == 0 ? 1 : Double(rawBodyBytes) / Double(storedBodyBytes) }
    /// Events table and indexes per event.
    public var eventBytesPerEvent: Double { events == 0 ? 0 : Double(eventBytes) / Double(events) }
    /// The whole file per event.
    public var fileBytesPerEvent: Double { events == 0 ? 0 : Double(fileBytes) / Double(events) }
}

extension EventStore {
    /// Counts and sizes: one pass over the events table (to sum uncompressed sizes, read from
    /// each compressed body's length prefix) plus SQLite's page statistics.
    public func statistics() async throws -> LogStatistics {
        if shared != nil { return try await sharedStatistics() }
        let path = self.path
        return try await read { db in
            var statistics = LogStatistics(
                events: 0, tickets: try Int64.fetchOne(db, sql: "SELECT count(*) FROM streams") ?? 0,
                eventsByType: [], fileBytes: 0, eventBytes: 0, projectionBytes: 0, rawBodyBytes: 0, storedBodyBytes: 0,
                uncompressedEvents: 0,
                dictionaries: try Int64.fetchOne(db, sql: "SELECT count(*) FROM dictionaries") ?? 0)
            statistics.eventsByType = try Row.fetchAll(
                db,
                sql: """
                    SELECT t.name, count(*) FROM events e JOIN event_types t ON t.key = e.type
                    GROUP BY t.name ORDER BY count(*) DESC, t.name
                    """
            ).map { (type: $0[0], count: $0[1]) }
            statistics.events = statistics.eventsByType.reduce(0) { $0 + $1.count }
            let rows = try Row.fetchCursor(db, sql: "SELECT codec, length(body), substr(body, 1, 20) FROM events")
            while let row = try rows.next() {
                let codec: Int64 = row[0]
                let stored: Int64 = row[1]
                statistics.storedBodyBytes += stored
                if BodyCodec.dictionaryID(codec) == BodyCodec.uncompressed {
                    statistics.rawBodyBytes += stored
                    statistics.uncompressedEvents += 1
                } else {
                    let prefix: Data = row[2]
                    statistics.rawBodyBytes +=
                        prefix.withUnsafeBytes { BodyCodec.rawCount(codec: codec, prefix: $0) } ?? 0
                }
            }
            let projectionTables = Set(Self.projections.flatMap(\.tables))
            let pages = try Row.fetchAll(
                db,
                sql:
                    "SELECT s.name, m.tbl_name, sum(s.pgsize) FROM dbstat s LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY s.name"
            )
            for page in pages {
                let table: String = (page[1] as String?) ?? page[0]
                let bytes: Int64 = page[2]
                if table == "events" { statistics.eventBytes += bytes }
                // The full-text index's pages are its shadow tables' (`message_search_data`…).
                if projectionTables.contains(table) || table.hasPrefix(MessageSearchIndex.table + "_") {
                    statistics.projectionBytes += bytes
                }
            }
            if path != ":memory:" {
                for file in [path, path + "-wal"] {
                    let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? nil
                    statistics.fileBytes += size ?? 0
                }
            }
            return statistics
        }
    }

    /// ``statistics()`` on PostgreSQL: the same counts, the bodies read a page at a time, and the
    /// sizes PostgreSQL gives for the events table (with its indexes), the projections' tables and
    /// the whole database.
    private func sharedStatistics() async throws -> LogStatistics {
        try await readSession { session in
            var statistics = LogStatistics(
                events: 0, tickets: try session.value("SELECT count(*) FROM streams").integer ?? 0,
                eventsByType: [], fileBytes: 0, eventBytes: 0, projectionBytes: 0, rawBodyBytes: 0, storedBodyBytes: 0,
                uncompressedEvents: 0, dictionaries: try session.value("SELECT count(*) FROM dictionaries").integer ?? 0
            )
            statistics.eventsByType = try session.rows(
                """
                SELECT t.name, count(*) FROM events e JOIN event_types t ON t.key = e.type
                GROUP BY t.name ORDER BY count(*) DESC, t.name
                """, []
            ).map { (type: $0[0].text ?? "", count: $0[1].integer ?? 0) }
            statistics.events = statistics.eventsByType.reduce(0) { $0 + $1.count }
            var after: Int64 = 0
            while true {
                let rows = try session.rows(
                    """
                    SELECT position, codec, length(body), substr(body, 1, 20) FROM events
                    WHERE position > ? ORDER BY position LIMIT 10000
                    """, [.integer(after)])
                guard let last = rows.last?[0].integer else { break }
                after = last
                for row in rows {
                    let stored = row[2].integer ?? 0
                    statistics.storedBodyBytes += stored
                    let codec = row[1].integer ?? 0
                    if BodyCodec.dictionaryID(codec) == BodyCodec.uncompressed {
                        statistics.rawBodyBytes += stored
                        statistics.uncompressedEvents += 1
                    } else {
                        let prefix = row[3].blob ?? []
                        statistics.rawBodyBytes +=
                            prefix.withUnsafeBytes { BodyCodec.rawCount(codec: codec, prefix: $0) } ?? 0
                    }
                }
            }
            statistics.eventBytes = try session.value("SELECT pg_total_relation_size('events')").integer ?? 0
            for table in Self.projections.flatMap({ $0.tables(.postgres) }) {
                statistics.projectionBytes +=
                    try session.value("SELECT pg_total_relation_size(?::regclass)", [.text(table)]).integer ?? 0
            }
            statistics.fileBytes = try session.value("SELECT pg_database_size(current_database())").integer ?? 0
            return statistics
        }
    }
}
