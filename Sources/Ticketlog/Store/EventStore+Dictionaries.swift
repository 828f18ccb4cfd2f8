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

    /// The ids of the log's dictionaries, oldest first, with the number of events using each.
    public func dictionaryUsage() async throws -> [(id: Int64, events: Int64)] {
        try await readSession { session in
            try session.rows(
                "SELECT codec & \(BodyCodec.sealedPacked - 1) AS dictionary, count(*) FROM events GROUP BY dictionary ORDER BY dictionary",
                []
            ).map { (id: $0[0].integer ?? 0, events: $0[1].integer ?? 0) }
        }
    }

    /// The newest dictionary new events are compressed with (on a shared database, this node's
    /// writer's).
    private var currentDictionary: LZ4Dictionary? {
        if let shared { return shared.writer?.currentDictionary }
        return dictionaries.current
    }

    func trainFirstDictionaryIfDue(head: Int64) async {
        guard let threshold = configuration.dictionaryTrainingThreshold, head >= threshold, currentDictionary == nil
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

    /// Samples the log and stores a new dictionary (or, with `onlyIfNone`, returns the newest
    /// one another process or node made first), in one write transaction — on PostgreSQL under
    /// the head lock, so two nodes never make the same id — then compresses this process's new
    /// events with it. Other nodes go on with the dictionary they have until they reopen the
    /// log (every event names its dictionary, so any mix reads back).
    private func makeDictionary(onlyIfNone: Bool) async throws -> Int64? {
        let createdAt = configuration.clock()
        let level = configuration.compressionLevel
        let writer = try shared.map { try sharedWriter($0) }
        let made = try await writeSession("could not store a new dictionary") { session -> LZ4Dictionary? in
            try LogWriter.lockHead(session)
            let known = try LogTables(session).dictionaries(compressionLevel: level)
            if onlyIfNone, let existing = known.values.max(by: { $0.id < $1.id }) {
                return existing  // another process made one first
            }
            let content = try Self.sampleDictionaryContent(session, dictionaries: known)
            guard !content.isEmpty else { return nil }
            let id = (known.keys.max() ?? 0) + 1
            try session.execute(
                "INSERT INTO dictionaries(id, created_at, content) VALUES (?, ?, ?)",
                [.integer(id), .integer(createdAt.microsecondsSinceEpoch), .blob(content)])
            return LZ4Dictionary(id: id, content: content, compressionLevel: level)
        }
        guard let made else { return nil }
        if let writer { writer.install(made) } else { dictionaries.install(made) }
        return made.id
    }

    /// Up to 64 KiB of stored event bodies (what the dictionary will compress): at most 1,024
    /// events spread evenly over the log, taken round-robin by type so that rare types are
    /// represented too.
    private static func sampleDictionaryContent(_ session: any SQLSession, dictionaries: [Int64: LZ4Dictionary])
        throws -> [UInt8]
    {
        let head = try ChainHead.position(session)
        guard head > 0 else { return [] }
        let sampleCount = min(head, 1_024)
        let stride = max(1, head / sampleCount)
        let positions = (0..<sampleCount).map { head - $0 * stride }.filter { $0 > 0 }
        var rows: [(position: Int64, type: Int64, body: [UInt8])] = []
        for found in try session.rows(
            "SELECT \(LogTables.eventColumns) FROM events WHERE position IN", in: positions.map(SQLValue.integer))
        {
            guard let row = StoredEventRow(found) else { continue }
            rows.append((row.position, row.type, try row.storedBody(dictionaries: dictionaries)))
        }
        var byType: [Int64: [[UInt8]]] = [:]
        for row in rows.sorted(by: { $0.position < $1.position }) { byType[row.type, default: []].append(row.body) }
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
