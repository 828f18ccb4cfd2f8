import Foundation
import GRDB

extension EventStore {
    /// Makes a new LZ4 dictionary from a sample of the log's events and compresses new events
    /// with it from now on. Events written before keep their dictionary and stay readable.
    ///
    /// The sample is spread over the whole log and mixes event types, so the dictionary holds
    /// the keys, type names and phrases events share.
    ///
    /// - Returns: the new dictionary's id, or `nil` when the log is empty (nothing to sample).
    @discardableResult
    public func rotateDictionary() async throws -> Int64? {
        try await makeDictionary(onlyIfNone: false)
    }

    /// The ids of the file's dictionaries, oldest first, with the number of events using each.
    public func dictionaryUsage() async throws -> [(id: Int64, events: Int64)] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT codec & \(BodyCodec.sealedPacked - 1) AS dictionary, count(*) FROM events GROUP BY dictionary ORDER BY dictionary"
            ).map {
                (id: $0[0], events: $0[1])
            }
        }
    }

    func trainFirstDictionaryIfDue(head: Int64) async {
        guard let threshold = configuration.dictionaryTrainingThreshold, head >= threshold,
            dictionaries.current == nil
        else { return }
        do {
            if let id = try await makeDictionary(onlyIfNone: true) {
                logger.info("Made the first LZ4 dictionary", metadata: ["ticketlog.dictionary": "\(id)"])
            }
        } catch {
            // The log stays fully usable without a dictionary (bodies are stored uncompressed);
            // the next commit tries again.
            logger.warning("Could not make an LZ4 dictionary", metadata: ["ticketlog.error": "\(error)"])
        }
    }

    private func makeDictionary(onlyIfNone: Bool) async throws -> Int64? {
        let createdAt = configuration.clock()
        let made = try await writeMapped("could not store a new dictionary") { db -> LZ4Dictionary? in
            if onlyIfNone,
                let existing = try DictionaryCache.fetchAll(db, compressionLevel: self.configuration.compressionLevel)
                    .last
            {
                return existing  // another process made one first
            }
            let content = try self.sampleDictionaryContent(db)
            guard !content.isEmpty else { return nil }
            let id = (try Int64.fetchOne(db, sql: "SELECT max(id) FROM dictionaries") ?? 0) + 1
            try db.execute(
                sql: "INSERT INTO dictionaries(id, created_at, content) VALUES (?, ?, ?)",
                arguments: [id, createdAt.microsecondsSinceEpoch, Data(content)])
            return LZ4Dictionary(id: id, content: content, compressionLevel: self.configuration.compressionLevel)
        }
        guard let made else { return nil }
        dictionaries.install(made)
        return made.id
    }

    /// Up to 64 KiB of stored event bodies (what the dictionary will compress): at most 1,024 events spread evenly over the log,
    /// taken round-robin by type so that rare types are represented too.
    private func sampleDictionaryContent(_ db: Database) throws -> [UInt8] {
        let head = try ChainHead.position(db)
        guard head > 0 else { return [] }
        let sampleCount = min(head, 1_024)
        let stride = max(1, head / sampleCount)
        let positions = (0..<sampleCount).map { head - $0 * stride }.filter { $0 > 0 }
        let placeholders = Array(repeating: "?", count: positions.count).joined(separator: ",")
        var byType: [Int64: [[UInt8]]] = [:]
        let rows = try Row.fetchCursor(
            db,
            sql: "SELECT position, type, codec, body FROM events WHERE position IN (\(placeholders)) ORDER BY position",
            arguments: StatementArguments(positions))
        while let row = try rows.next() {
            let body = try storedBody(codec: row[2], blob: row[3], position: row[0], db: db)
            byType[row[1], default: []].append(body)
        }
        var content: [UInt8] = []
        var queues = byType.sorted { $0.key < $1.key }.map { $0.value[...] }
        while content.count < LZ4Dictionary.maximumSize, queues.contains(where: { !$0.isEmpty }) {
            for index in queues.indices {
                guard let body = queues[index].popFirst() else { continue }
                let room = LZ4Dictionary.maximumSize - content.count
                guard room > 0 else { break }
                content.append(contentsOf: body.prefix(room))
            }
        }
        return content
    }
}
