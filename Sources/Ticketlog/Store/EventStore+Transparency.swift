import Foundation
import GRDB

/// A signed checkpoint as the log stores it.
public struct StoredCheckpoint: Sendable, Equatable {
    public var checkpoint: Checkpoint
    /// The signed note, verbatim.
    public var note: String
    public var keyID: UInt32
    /// The verifier key of the signer, in its text form (public: an auditor still checks
    /// against the key they were given).
    public var verifierKey: String
    public var signedAt: Timestamp
}

/// Where the log disagrees with a checkpoint kept elsewhere (``EventStore/verify(against:verifier:progress:)``).
public struct CheckpointComparison: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// The log's first `size` events have the checkpoint's root.
        case matches
        /// The log holds fewer events than the checkpoint commits to: it was cut back.
        case cutBack(eventsInLog: Int64)
        /// The log's first `size` events have another root: something in
        /// `firstDifference` was changed, removed or reordered.
        case differs(firstDifference: ClosedRange<Int64>)
    }

    public var checkpoint: Checkpoint
    public var outcome: Outcome
    /// How the range was narrowed (or why it could not be).
    public var detail: String

    public var holds: Bool { outcome == .matches }
}

extension EventStore {
    /// The size and root of the Merkle tree over the log as its last commit left it.
    public func treeHead() async throws -> (size: Int64, root: [UInt8]) {
        try await readSession { session in
            let head = try ChainHead.fetch(session)
            return (head.tree.size, head.tree.root)
        }
    }

    /// The root of the tree over the first `size` events.
    public func treeRoot(size: Int64) async throws -> [UInt8] {
        try await readSession { session in
            let reader = try TreeReader(self, session)
            try reader.check(size: size)
            return try reader.root(size: size)
        }
    }

    /// Signs the current tree head with `signer` and stores the checkpoint in the log.
    ///
    /// Refuses (``EventStoreError/Code/corruptRecord``) when the log no longer holds what an
    /// earlier checkpoint of the same key signed: a log operator never signs a history that
    /// contradicts one it signed before.
    @discardableResult
    public func signCheckpoint(with signer: NoteSigner) async throws -> StoredCheckpoint {
        let clock = configuration.clock
        return try await writeSession("the checkpoint could not be stored") { session in
            let head = try ChainHead.fetch(session)
            let reader = try TreeReader(self, session)
            if let previous = try Self.latestCheckpoint(session, keyID: signer.keyID, atMost: head.tree.size) {
                let root = try reader.root(size: previous.checkpoint.size)
                guard root == previous.checkpoint.root else {
                    throw EventStoreError.corrupt(
                        "the log no longer holds what the checkpoint of size \(previous.checkpoint.size) signed (its tree has another root there): it was changed after that checkpoint; nothing was signed",
                        position: nil)
                }
            }
            let checkpoint = Checkpoint(origin: signer.name, size: head.tree.size, root: head.tree.root)
            let note = try signer.sign(checkpoint.text)
            let signedAt = clock()
            try session.execute(
                """
                INSERT INTO checkpoints(size, key_id, signed_at, note, verifier) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT DO NOTHING
                """,
                [
                    .integer(checkpoint.size), .integer(Int64(signer.keyID)),
                    .integer(signedAt.microsecondsSinceEpoch), .text(note), .text(signer.verifier.text),
                ])
            return try Self.latestCheckpoint(session, keyID: signer.keyID, atMost: checkpoint.size)
                ?? StoredCheckpoint(
                    checkpoint: checkpoint, note: note, keyID: signer.keyID, verifierKey: signer.verifier.text,
                    signedAt: signedAt)
        }
    }

    /// The newest stored checkpoint (of the key `keyID`, when given), or the one of exactly
    /// `size` events.
    public func storedCheckpoint(size: Int64? = nil, keyID: UInt32? = nil) async throws -> StoredCheckpoint? {
        try await readSession { session in
            guard try LogTables(session).tableNames().contains("checkpoints") else { return nil }
            if let size {
                return try Self.checkpoints(session, keyID: keyID, sql: "size = ?", [.integer(size)]).first
            }
            return try Self.latestCheckpoint(session, keyID: keyID, atMost: .max)
        }
    }

    private static func latestCheckpoint(_ session: any SQLSession, keyID: UInt32?, atMost size: Int64) throws
        -> StoredCheckpoint?
    {
        try checkpoints(session, keyID: keyID, sql: "size <= ?", [.integer(size)]).first
    }

    private static func checkpoints(_ session: any SQLSession, keyID: UInt32?, sql: String, _ arguments: [SQLValue])
        throws -> [StoredCheckpoint]
    {
        var conditions = [sql]
        var arguments = arguments
        if let keyID {
            conditions.append("key_id = ?")
            arguments.append(.integer(Int64(keyID)))
        }
        return try session.rows(
            "SELECT size, key_id, signed_at, note, verifier FROM checkpoints WHERE \(conditions.joined(separator: " AND ")) ORDER BY size DESC, signed_at DESC LIMIT 1000",
            arguments
        ).compactMap { row in
            guard let note = row[3].text, let keyID = row[1].integer, let verifier = row[4].text,
                let signedAt = row[2].integer,
                let separator = note.range(of: "\n\n", options: .backwards),
                let checkpoint = try? Checkpoint(text: String(note[..<separator.lowerBound]) + "\n")
            else { return nil }
            return StoredCheckpoint(
                checkpoint: checkpoint, note: note, keyID: UInt32(truncatingIfNeeded: keyID), verifierKey: verifier,
                signedAt: Timestamp(microsecondsSinceEpoch: signedAt))
        }
    }

    /// A `tlog-proof` that the event at `position` is in the tree `checkpoint` signs.
    ///
    /// - Parameters:
    ///   - position: the event's position (its leaf index is `position − 1`).
    ///   - checkpoint: a stored checkpoint whose size covers `position`.
    public func inclusionProof(position: Int64, in checkpoint: StoredCheckpoint) async throws -> InclusionProof {
        try await inclusionProofs(positions: [position], in: checkpoint).first!
    }

    /// Proofs for several events against one checkpoint, sharing the leaves they recompute.
    public func inclusionProofs(positions: [Int64], in checkpoint: StoredCheckpoint) async throws -> [InclusionProof] {
        try await readSession { session in
            let reader = try TreeReader(self, session)
            let size = checkpoint.checkpoint.size
            try reader.check(size: size)
            return try positions.map { position in
                guard position >= 1, position <= size else {
                    throw EventStoreError(
                        code: .notFound,
                        message: "position \(position) is not in the tree of size \(size) the checkpoint signs")
                }
                let path = try MerkleTree.inclusionPath(index: position - 1, size: size, perfect: reader.perfect)
                return InclusionProof(index: position - 1, path: path, checkpointNote: checkpoint.note)
            }
        }
    }

    /// The consistency proof between the trees of the first `oldSize` and `newSize` events.
    public func consistencyProof(from oldSize: Int64, to newSize: Int64) async throws -> ConsistencyProof {
        try await readSession { session in
            let reader = try TreeReader(self, session)
            guard oldSize >= 0, oldSize <= newSize else {
                throw EventStoreError.invalid("the old size \(oldSize) must be between 0 and the new size \(newSize)")
            }
            try reader.check(size: newSize)
            return ConsistencyProof(
                oldSize: oldSize, newSize: newSize,
                path: try MerkleTree.consistencyPath(oldSize: oldSize, newSize: newSize, perfect: reader.perfect))
        }
    }

    /// The events of `stream` up to `checkpoint`, each with its entry (its line as `ticketlog
    /// read` prints it) and its inclusion proof: an evidence bundle.
    public func evidence(for stream: StreamID, in checkpoint: StoredCheckpoint) async throws -> EvidenceBundle {
        let size = checkpoint.checkpoint.size
        let entries = try await readSession { session in
            try self.storedEvents(
                session, where: "stream = (SELECT key FROM streams WHERE name = ?) AND position <= ? ORDER BY position",
                [.text(stream.rawValue), .integer(size)]
            ).map { EvidenceBundle.Entry(position: $0.position, line: try $0.line(), proof: nil) }
        }
        guard !entries.isEmpty else {
            throw EventStoreError(
                code: .notFound, message: "\(stream) has no events in the tree of size \(size) the checkpoint signs")
        }
        let proofs = try await inclusionProofs(positions: entries.map(\.position), in: checkpoint)
        return EvidenceBundle(
            stream: stream, checkpointNote: checkpoint.note,
            entries: zip(entries, proofs).map { EvidenceBundle.Entry(position: $0.position, line: $0.line, proof: $1) })
    }

    /// Compares the log with a checkpoint kept elsewhere, signed by `verifier`: recomputes the
    /// tree over the log's first `checkpoint.size` events (from the events themselves, trusting
    /// nothing the file says about them) and compares its root.
    ///
    /// When they differ, the range of the first difference is narrowed with what can be trusted:
    /// the file's stored subtree roots when they reproduce the checkpoint's root (then to the
    /// 64-event tile that no longer matches), and the checkpoints stored in the log that carry a
    /// valid signature of `verifier`.
    public func verify(
        against checkpoint: Checkpoint, verifier: NoteVerifier,
        progress: (@Sendable (VerificationProgress) -> Void)? = nil
    ) async throws -> CheckpointComparison {
        let anchors = try await readSession { session -> [(size: Int64, root: [UInt8])] in
            guard try LogTables(session).tableNames().contains("checkpoints") else { return [] }
            return try session.rows("SELECT note FROM checkpoints WHERE size <= ?", [.integer(checkpoint.size)])
                .compactMap { row in
                    guard let note = row[0].text, let opened = try? Checkpoint.open(note, verifier: verifier) else {
                        return nil
                    }
                    return (opened.size, opened.root)
                }
        }
        .sorted { $0.size < $1.size }
        return try await readSession { session in
            let events =
                try session.value("SELECT count(*) FROM events WHERE position <= ?", [.integer(checkpoint.size)])
                .integer ?? 0
            var edge = MerkleEdge()
            var tail: [[UInt8]] = []
            var firstChangedTile: Int64?
            var changedTileLeaves: [[UInt8]] = []
            var lastGood: Int64 = 0
            var firstBad: Int64?
            var anchorIndex = anchors.startIndex
            let storedNodes = try LogTables(session).tableNames().contains("merkle_nodes")
            // Paged by position, so that a log of any size is read in bounded memory.
            var page: [StoredEvent] = []
            var pageIndex = 0
            scan: while true {
                if pageIndex == page.count {
                    page = try self.storedEvents(
                        session, where: "position > ? AND position <= ? ORDER BY position LIMIT 2000",
                        [.integer(edge.size), .integer(checkpoint.size)])
                    pageIndex = 0
                    if page.isEmpty { break scan }
                }
                let event = page[pageIndex]
                pageIndex += 1
                guard event.position == edge.size + 1 else { break scan }
                let leaf = MerkleTree.leafHash(try event.line())
                tail.append(leaf)
                try edge.append(leaf) { level, index, hash in
                    guard level == MerkleNodes.storedLevel else { return }
                    if firstChangedTile == nil, storedNodes,
                        try MerkleNodes.hash(level: level, index: index, session) != hash
                    {
                        firstChangedTile = index
                        changedTileLeaves = tail
                    }
                    tail.removeAll(keepingCapacity: true)
                }
                while anchorIndex < anchors.endIndex, anchors[anchorIndex].size <= edge.size {
                    if anchors[anchorIndex].size == edge.size {
                        if edge.root == anchors[anchorIndex].root {
                            if firstBad == nil { lastGood = edge.size }
                        } else if firstBad == nil {
                            firstBad = edge.size
                        }
                    }
                    anchorIndex += 1
                }
                if edge.size % 10_000 == 0 {
                    progress?(VerificationProgress(eventsChecked: edge.size, totalEvents: events))
                }
            }
            if edge.size < checkpoint.size {
                return CheckpointComparison(
                    checkpoint: checkpoint, outcome: .cutBack(eventsInLog: edge.size),
                    detail:
                        "the log holds \(edge.size) events in sequence; the checkpoint commits to \(checkpoint.size): events from position \(edge.size + 1) on are missing"
                )
            }
            if edge.root == checkpoint.root {
                return CheckpointComparison(
                    checkpoint: checkpoint, outcome: .matches,
                    detail: "the first \(checkpoint.size) events have the checkpoint's root")
            }
            // The file's stored subtree roots are trusted only if, with the recomputed leaves of
            // the last partial tile, they give the signed root.
            if storedNodes {
                let tileStart = (checkpoint.size >> MerkleNodes.storedLevel) << MerkleNodes.storedLevel
                let root = try? MerkleTree.subtreeHash(start: 0, count: checkpoint.size) { level, index in
                    if level >= MerkleNodes.storedLevel {
                        guard let hash = try MerkleNodes.hash(level: level, index: index, session) else {
                            throw EventStoreError(code: .notFound, message: "node missing")
                        }
                        return hash
                    }
                    let first = Int((index << level) - tileStart)
                    return MerkleTree.fold(Array(tail[first..<first + (1 << level)]))
                }
                if root == checkpoint.root {
                    let (from, to): (Int64, Int64) =
                        if let tile = firstChangedTile {
                            ((tile << MerkleNodes.storedLevel) + 1, (tile + 1) << MerkleNodes.storedLevel)
                        } else {
                            (tileStart + 1, checkpoint.size)
                        }
                    let tileDetail =
                        "the log's stored subtree roots still give the signed root, and the events of positions \(from)–\(to) no longer hash to theirs"
                    // Inside the tile, the stored leaf hints (not signed) say which leaf changed.
                    if let tile = firstChangedTile, let hints = try MerkleNodes.hints(tile: tile, session),
                        let changed = changedTileLeaves.indices.first(where: { index in
                            let start = index * MerkleEdge.hintBytes
                            return !changedTileLeaves[index].prefix(MerkleEdge.hintBytes)
                                .elementsEqual(hints[start..<start + MerkleEdge.hintBytes])
                        })
                    {
                        let position = from + Int64(changed)
                        return CheckpointComparison(
                            checkpoint: checkpoint, outcome: .differs(firstDifference: position...position),
                            detail:
                                "\(tileDetail); of those, the first whose hash differs from the one recorded when it was appended is position \(position)"
                        )
                    }
                    return CheckpointComparison(
                        checkpoint: checkpoint, outcome: .differs(firstDifference: from...to), detail: tileDetail)
                }
            }
            let from = lastGood + 1
            let to = firstBad ?? checkpoint.size
            return CheckpointComparison(
                checkpoint: checkpoint, outcome: .differs(firstDifference: from...to),
                detail: lastGood > 0 || firstBad != nil
                    ? "narrowed by the checkpoints of this key stored in the log (sizes \(lastGood) and \(to))"
                    : "the file's own tree was rewritten too, and no stored checkpoint of this key narrows it down")
        }
    }

    /// Builds the Merkle tree of a log written before the tree existed (at its first writable
    /// opening), from its events.
    func buildTreeIfMissing(_ db: Database) throws {
        guard try MerkleNodes.storedEdge(db) == nil else { return }
        let head = try ChainHead.position(db)
        if head > 0 {
            logger.info("Building the Merkle tree over the log", metadata: ["ticketlog.events": "\(head)"])
        }
        var edge = MerkleEdge()
        try forEachStoredEvent(db, sql: "SELECT \(Self.eventColumns) FROM events ORDER BY position", []) { event, _ in
            guard event.position == edge.size + 1 else {
                throw EventStoreError.corrupt(
                    "position \(event.position) follows \(edge.size): the log has a gap (`ticketlog verify` says more)",
                    position: event.position)
            }
            try MerkleNodes.append(MerkleTree.leafHash(try event.line()), to: &edge, db)
        }
        guard edge.size == head else {
            throw EventStoreError.corrupt(
                "the log ends at position \(edge.size) but its head records position \(head)", position: edge.size + 1)
        }
        try MerkleNodes.save(edge, db)
    }
}

/// Reads subtree hashes for proofs: stored nodes for 64 leaves and more, leaves recomputed from
/// the events below that (a tile of 64 events at a time, kept while the reader lives).
final class TreeReader {
    private let store: EventStore
    private let session: any SQLSession
    private let size: Int64
    private var tiles: [Int64: [[UInt8]]] = [:]

    init(_ store: EventStore, _ session: any SQLSession) throws {
        self.store = store
        self.session = session
        size = try ChainHead.fetch(session).tree.size
    }

    func check(size requested: Int64) throws {
        guard requested >= 0, requested <= size else {
            throw EventStoreError(
                code: .notFound, message: "the log holds \(size) events; there is no tree of size \(requested)")
        }
    }

    func root(size: Int64) throws -> [UInt8] {
        size == 0 ? MerkleTree.emptyRoot : try MerkleTree.subtreeHash(start: 0, count: size, perfect: perfect)
    }

    func perfect(level: Int, index: Int64) throws -> [UInt8] {
        if level >= MerkleNodes.storedLevel {
            guard let hash = try MerkleNodes.hash(level: level, index: index, session) else {
                throw EventStoreError.corrupt(
                    "the log's Merkle tree lacks the node at level \(level), index \(index)", position: nil)
            }
            return hash
        }
        let first = index << level
        let tile = first >> MerkleNodes.storedLevel
        let leaves = try tileLeaves(tile)
        let offset = Int(first - (tile << MerkleNodes.storedLevel))
        guard offset + (1 << level) <= leaves.count else {
            throw EventStoreError.corrupt("the log's events end inside a subtree of its tree", position: nil)
        }
        return MerkleTree.fold(Array(leaves[offset..<offset + (1 << level)]))
    }

    private func tileLeaves(_ tile: Int64) throws -> [[UInt8]] {
        if let leaves = tiles[tile] { return leaves }
        if tiles.count >= 256 { tiles.removeAll(keepingCapacity: true) }
        let first = (tile << MerkleNodes.storedLevel) + 1
        let last = min(size, first + (1 << MerkleNodes.storedLevel) - 1)
        var leaves: [[UInt8]] = []
        for event in try store.storedEvents(
            session, where: "position BETWEEN ? AND ? ORDER BY position", [.integer(first), .integer(last)])
        {
            guard event.position == first + Int64(leaves.count) else {
                throw EventStoreError.corrupt(
                    "position \(event.position) follows \(first + Int64(leaves.count) - 1): the log has a gap (`ticketlog verify` says more)",
                    position: event.position)
            }
            leaves.append(MerkleTree.leafHash(try event.line()))
        }
        tiles[tile] = leaves
        return leaves
    }
}
