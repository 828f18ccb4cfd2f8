import Foundation
import GRDB

extension EventStore {
    /// Appends `events` to `stream`, atomically: all of them or none.
    ///
    /// - Parameter expectedVersion: what the stream must be at for the append to happen.
    /// - Returns: the positions the events were stored at and the stream's new version.
    ///   When every event id is already stored with the same content (a retry), nothing is
    ///   written and the original positions come back with ``AppendResult/wasAlreadyStored``.
    /// - Throws: ``EventStoreError``: ``EventStoreError/Code/versionConflict`` naming the actual
    ///   version; ``EventStoreError/Code/duplicateEventID`` when an id is stored with other
    ///   content; ``EventStoreError/Code/invalidEvent`` for an empty, oversized or
    ///   self-contradicting batch; ``EventStoreError/Code/storageFailure`` when SQLite fails.
    ///   On any error nothing is appended.
    @discardableResult
    public func append(
        _ events: [ProposedEvent], to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) async throws -> AppendResult {
        let prepared = try prepare(events, stream: stream, expectedVersion: expectedVersion)
        return try await committer.submit(prepared, weight: events.count)
    }

    /// Appends one event; see ``append(_:to:expectedVersion:)``.
    @discardableResult
    public func append(
        _ event: ProposedEvent, to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) async throws -> AppendResult {
        try await append([event], to: stream, expectedVersion: expectedVersion)
    }

    /// Appends several batches, in order, sharing transactions with each other and with
    /// concurrent appends. Each is atomic on its own and succeeds or fails on its own, exactly as
    /// if passed to ``append(_:to:expectedVersion:)`` one after the other, but without waiting
    /// for a commit between them. Their positions follow the order of `appends`.
    public func append(_ appends: [StreamAppend]) async -> [Result<AppendResult, EventStoreError>] {
        var prepared: [Result<PreparedAppend, EventStoreError>] = []
        for item in appends {
            do {
                prepared.append(.success(try prepare(item.events, stream: item.stream, expectedVersion: item.expectedVersion)))
            } catch {
                prepared.append(.failure(Self.storeError(error)))
            }
        }
        let submitted = prepared.compactMap { try? $0.get() }.map { (request: $0, weight: $0.events.count) }
        var results = await committer.submitAll(submitted).makeIterator()
        return prepared.map { preparation in
            switch preparation {
            case .failure(let error): .failure(error)
            case .success: results.next()!.mapError(Self.storeError)
            }
        }
    }

    private static func storeError(_ error: any Error) -> EventStoreError {
        error as? EventStoreError ?? EventStoreError(code: .storageFailure, message: "the append failed", cause: error)
    }

    func prepare(_ events: [ProposedEvent], stream: StreamID, expectedVersion: ExpectedVersion) throws -> PreparedAppend {
        guard !events.isEmpty else { throw EventStoreError.invalid("an append needs at least one event") }
        guard events.count <= configuration.maximumEventsPerAppend else {
            throw EventStoreError.invalid(
                "an append may carry at most \(configuration.maximumEventsPerAppend) events; this one has \(events.count)")
        }
        if case .exact(let version) = expectedVersion, version < 0 {
            throw EventStoreError.invalid("expected version \(version) is negative")
        }
        var seen = Set<UUID>()
        for event in events where !seen.insert(event.id).inserted {
            throw EventStoreError.invalid("event id \(event.id.uuidString.lowercased()) appears twice in one append")
        }
        let recordedAt = configuration.clock()
        let dictionary = dictionaries.current
        let encoded = try events.map { event in
            let canonical = try canonicalBody(of: event, stream: stream, recordedAt: recordedAt)
            let (codec, blob) = BodyCodec.encode(canonical, dictionary: dictionary)
            return PreparedAppend.Event(proposed: event, canonical: canonical, codec: codec, blob: blob)
        }
        return PreparedAppend(stream: stream, expectedVersion: expectedVersion, recordedAt: recordedAt, events: encoded)
    }

    /// The event's canonical body, or ``EventStoreError/Code/invalidEvent`` when it cannot be
    /// encoded or is larger than `maximumEventSize`.
    func canonicalBody(of event: ProposedEvent, stream: StreamID, recordedAt: Timestamp) throws -> [UInt8] {
        let canonical: [UInt8]
        do {
            canonical = try CanonicalJSON.encode(EventBody(event, stream: stream, recordedAt: recordedAt))
        } catch {
            throw EventStoreError(
                code: .invalidEvent, message: "event \(event.id.uuidString.lowercased()) cannot be encoded", cause: error)
        }
        guard canonical.count <= configuration.maximumEventSize else {
            throw EventStoreError.invalid(
                "event \(event.id.uuidString.lowercased()) is \(canonical.count) bytes; the limit is \(configuration.maximumEventSize)")
        }
        return canonical
    }

    /// Writes one group of appends in one transaction; each append in its own savepoint so that
    /// one rejected append does not take the others down.
    func commit(_ requests: [PreparedAppend]) async -> [Result<AppendResult, any Error>] {
        let outcome: (results: [Result<AppendResult, any Error>], head: Int64)
        do {
            outcome = try await writer.write { db in
                var head = try ChainHead.fetch(db)
                let start = head.position
                let live = try Self.liveProjections(db, head: start)
                var results: [Result<AppendResult, any Error>] = []
                results.reserveCapacity(requests.count)
                for request in requests {
                    var local = head
                    var result: AppendResult?
                    do {
                        try db.inSavepoint {
                            result = try self.write(request, db: db, head: &local, projections: live)
                            return .commit
                        }
                        head = local
                        results.append(.success(result!))
                    } catch let error as EventStoreError {
                        results.append(.failure(error))
                    }
                }
                if head.position != start {
                    try head.save(db)
                    for projection in live { try ProjectionCheckpoints.save(projection, position: head.position, db) }
                }
                return (results, head.position)
            }
        } catch {
            let failure = EventStoreError(code: .storageFailure, message: "the append could not be committed", cause: error)
            logger.error("Append transaction failed", metadata: ["ticketlog.error": "\(error)"])
            return requests.map { _ in .failure(failure) }
        }
        notifier.advance(to: outcome.head)
        await trainFirstDictionaryIfDue(head: outcome.head)
        return outcome.results
    }

    private func write(
        _ request: PreparedAppend, db: Database, head: inout ChainHead, projections: [any Projection]
    ) throws -> AppendResult {
        if let stored = try storedResult(of: request, db: db) { return stored }

        let streamRow = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT key, version FROM streams WHERE name = ?"),
            arguments: [request.stream.rawValue])
        let current: Int64 = streamRow?["version"] ?? 0
        guard request.expectedVersion.accepts(current) else {
            throw EventStoreError(
                code: .versionConflict,
                message: "stream \(request.stream) is at version \(current), the append expected \(request.expectedVersion)",
                actualVersion: current)
        }
        let streamKey: Int64
        if let streamRow {
            streamKey = streamRow["key"]
        } else {
            try db.cachedStatement(sql: "INSERT INTO streams(name, version) VALUES (?, 0)")
                .execute(arguments: [request.stream.rawValue])
            streamKey = db.lastInsertedRowID
        }
        let insert = try db.cachedStatement(
            sql: "INSERT INTO events(position, stream, version, id, type, codec, body, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        let first = head.position + 1
        var version = current
        for event in request.events {
            version += 1
            let position = head.position + 1
            let hash = HashChain.link(previous: head.hash, position: position, version: version, body: event.canonical)
            try insert.execute(arguments: [
                position, streamKey, version, event.proposed.id.databaseBytes, event.proposed.type.rawValue,
                event.codec, Data(event.blob), Data(hash),
            ])
            head = ChainHead(position: position, hash: hash)
            if !projections.isEmpty {
                let recorded = EventBody(event.proposed, stream: request.stream, recordedAt: request.recordedAt)
                    .recorded(position: position, version: version)
                let projected = ProjectedEvent(event: recorded, streamKey: streamKey)
                for projection in projections { try projection.apply(projected, db) }
            }
        }
        try db.cachedStatement(sql: "UPDATE streams SET version = ? WHERE key = ?").execute(arguments: [version, streamKey])
        return AppendResult(positions: first...head.position, streamVersion: version, wasAlreadyStored: false)
    }

    /// When the append's event ids are already stored: its original result, if it is the same
    /// append; an error if the ids are stored with other content. `nil` when none is stored.
    private func storedResult(of request: PreparedAppend, db: Database) throws -> AppendResult? {
        let lookup = try db.cachedStatement(
            sql: "SELECT e.position, e.version, e.codec, e.body FROM events e WHERE e.id = ?")
        var found: [(event: PreparedAppend.Event, record: RecordedEvent)] = []
        for event in request.events {
            guard let row = try Row.fetchOne(lookup, arguments: [event.proposed.id.databaseBytes]) else { continue }
            found.append((event, try decodeRecord(row, db: db)))
        }
        guard let firstFound = found.first else { return nil }
        let id = firstFound.event.proposed.id.uuidString.lowercased()
        guard found.count == request.events.count else {
            throw EventStoreError(
                code: .duplicateEventID,
                message: "event \(id) is already stored at position \(firstFound.record.position), but other events of this append are not: an append is stored whole or not at all, so this is not a retry",
                position: firstFound.record.position)
        }
        for (event, record) in found where record.proposed != event.proposed || record.stream != request.stream {
            throw EventStoreError(
                code: .duplicateEventID,
                message: "event \(event.proposed.id.uuidString.lowercased()) is already stored at position \(record.position) with other content",
                position: record.position)
        }
        let positions = found.map(\.record.position)
        let version = try Int64.fetchOne(
            db, sql: "SELECT version FROM streams WHERE name = ?", arguments: [request.stream.rawValue]) ?? 0
        return AppendResult(positions: positions.min()!...positions.max()!, streamVersion: version, wasAlreadyStored: true)
    }
}

/// The last link of the chain: the newest position and its hash.
struct ChainHead: Sendable {
    var position: Int64
    var hash: [UInt8]

    static func fetch(_ db: Database) throws -> ChainHead {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"))
        else { return ChainHead(position: 0, hash: HashChain.genesis) }
        let hash: Data = row["hash"]
        return ChainHead(position: row["position"], hash: Array(hash))
    }

    func save(_ db: Database) throws {
        try db.cachedStatement(sql: "UPDATE meta SET value = ? WHERE key = 'head_position'").execute(arguments: [position])
        try db.cachedStatement(sql: "UPDATE meta SET value = ? WHERE key = 'head_hash'").execute(arguments: [Data(hash)])
    }
}
