import Crypto
import Foundation
import Testing

@testable import Ticketlog

/// The Merkle tree, signed checkpoints, proofs and evidence bundles (issue 16). The independent
/// checks (RFC vectors and a verifier written from the specifications in Python) are in
/// `TransparencyCLITests`.
@Suite(.timeLimit(.minutes(3))) struct TransparencyTests {
    /// The RFC's definition, written the slow way: the tree's hash, recursively.
    static func naiveRoot(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        if leaves.isEmpty { return Array(SHA256.hash(data: [UInt8]())) }
        if leaves.count == 1 { return leaves.first! }
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        let start = leaves.startIndex
        return MerkleTree.nodeHash(naiveRoot(leaves[start..<start + k]), naiveRoot(leaves[(start + k)...]))
    }

    static func leaves(_ count: Int) -> [[UInt8]] {
        (0..<count).map { MerkleTree.leafHash(Array("entry \($0)".utf8)) }
    }

    static func perfect(_ leaves: [[UInt8]]) -> (Int, Int64) -> [UInt8] {
        { level, index in naiveRoot(leaves[Int(index << level)..<Int((index + 1) << level)]) }
    }

    @Test func rootsEdgesAndProofsAgreeWithTheDefinition() throws {
        let all = Self.leaves(70)
        var edge = MerkleEdge()
        #expect(edge.root == MerkleTree.emptyRoot)
        for size in 1...all.count {
            edge.append(all[size - 1]) { _, _, _ in }
            let leaves = Array(all.prefix(size))
            let root = Self.naiveRoot(leaves[...])
            #expect(MerkleTree.root(leaves: leaves) == root)
            #expect(edge.root == root)
            #expect(MerkleEdge(bytes: edge.bytes) == edge)
            for index in 0..<size {
                let path = try MerkleTree.inclusionPath(
                    index: Int64(index), size: Int64(size), perfect: Self.perfect(leaves))
                #expect(
                    MerkleTree.verifyInclusion(
                        leaf: leaves[index], index: Int64(index), size: Int64(size), path: path, root: root))
                // Another leaf, another index, another size: refused.
                #expect(
                    !MerkleTree.verifyInclusion(
                        leaf: all[(index + 1) % all.count], index: Int64(index), size: Int64(size), path: path,
                        root: root))
                if size > 1 {
                    #expect(
                        !MerkleTree.verifyInclusion(
                            leaf: leaves[index], index: Int64((index + 1) % size), size: Int64(size), path: path,
                            root: root))
                }
            }
            for old in 0...size {
                let proof = try MerkleTree.consistencyPath(
                    oldSize: Int64(old), newSize: Int64(size), perfect: Self.perfect(leaves))
                let oldRoot = Self.naiveRoot(leaves.prefix(old))
                #expect(
                    MerkleTree.verifyConsistency(
                        oldSize: Int64(old), newSize: Int64(size), oldRoot: oldRoot, newRoot: root, proof: proof))
                if old > 0 && old < size {
                    // A rewritten old tree (another leaf at 0) is not a prefix.
                    var other = leaves
                    other[0] = MerkleTree.leafHash([1, 2, 3])
                    #expect(
                        !MerkleTree.verifyConsistency(
                            oldSize: Int64(old), newSize: Int64(size), oldRoot: Self.naiveRoot(other.prefix(old)),
                            newRoot: root, proof: proof))
                }
            }
        }
    }

    @Test func theLeafTheWriterHashesIsTheLineReadPrints() throws {
        var events = EventFactory()
        for event in events.conversation(messages: 3) {
            let body = EventBody(event, stream: .test(7), recordedAt: Timestamp(microsecondsSinceEpoch: 5))
            let canonical = try CanonicalJSON.encode(body)
            let (stored, insertion) = try #require(StoredBody.split(canonical))
            let line = try #require(
                StoredBody.line(stored, columns: EventColumns(body), position: 12_345, version: 9))
            #expect(insertion.leafHash(of: canonical, position: 12_345, version: 9) == MerkleTree.leafHash(line))
            // The line is the recorded event's JSON: what `read` prints and import reads.
            let recorded = try CanonicalJSON.decode(RecordedEvent.self, from: line)
            #expect(recorded.position == 12_345 && recorded.version == 9)
        }
        // An object that already has a position is not an event body.
        #expect(StoredBody.split(Array(#"{"a":1,"position":2}"#.utf8)) == nil)
    }

    /// The store's tree is the tree over the lines `read` prints, kept through refused appends
    /// (their savepoints roll the tree back too), and a log written before the tree gets it.
    @Test(arguments: StoreKind.allCases) func theStoresTreeIsTheTreeOverItsLines(kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var events = EventFactory()
        for round in 0..<5 {
            var appends: [StreamAppend] = []
            for ticket in 0..<6 {
                appends.append(StreamAppend(stream: .test(ticket), events: events.conversation(messages: 3 + round)))
            }
            // Refused: a version conflict in the middle of the group.
            appends.insert(
                StreamAppend(stream: .test(0), events: [events.message()], expectedVersion: .exact(999)), at: 3)
            let results = await store.append(appends)
            #expect(results.filter { (try? $0.get()) == nil }.count == 1)
        }
        let lines = try await store.eventLines(AuditQuery(limit: 10_000)).map(\.line)
        let head = try await store.treeHead()
        #expect(head.size == Int64(lines.count))
        #expect(head.root == Self.naiveRoot(lines.map(MerkleTree.leafHash)[...]))
        for size in [1, 63, 64, 65, 128, 129, lines.count] {
            #expect(
                try await store.treeRoot(size: Int64(size))
                    == Self.naiveRoot(lines.prefix(size).map(MerkleTree.leafHash)[...]))
        }
    }

    @Test func aLogWithoutTheTreeGetsItWhenOpenedForWriting() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("desk.sqlite")
        try FileManager.default.copyItem(
            atPath: fixturesDirectory.appendingPathComponent("sample/desk.sqlite").path, toPath: path)
        // The fixture was written before the tree existed.
        #expect(try sqlite3(path, "SELECT count(*) FROM meta WHERE key = 'tree_edge'") == "0\n")
        let store = try EventStore(path: path)
        let lines = try await store.eventLines(AuditQuery(limit: 100_000)).map(\.line)
        let head = try await store.treeHead()
        #expect(head.size == Int64(lines.count) && head.root == MerkleTree.root(leaves: lines.map(MerkleTree.leafHash)))
        let report = try await store.verify()
        #expect(report.isValid)
    }

    @Test func keysRoundTripAndForeignOnesAreRefused() throws {
        let signer = try NoteSigner(generatingFor: "example.com/ticketlog")
        let again = try NoteSigner(text: signer.text + "\n")
        #expect(again.text == signer.text && again.keyID == signer.keyID)
        let verifier = try NoteVerifier(text: signer.verifier.text)
        #expect(verifier == signer.verifier)
        #expect(signer.text.hasPrefix("PRIVATE+KEY+example.com/ticketlog+"))
        // The key id is the first four bytes of SHA-256(name, newline, 0x01, public key).
        let parts = verifier.text.split(separator: "+", maxSplits: 2)
        let key = Data(base64Encoded: String(parts[2]))!
        let id = Array(SHA256.hash(data: Array("example.com/ticketlog\n".utf8) + key)).prefix(4)
        #expect(parts[1] == id.hexString[...])

        func refusal(_ body: () throws -> Void) -> ProofError? {
            do { try body() } catch {
                return error as? ProofError ?? ProofError(.unusable, "not a ProofError: \(error)")
            }
            return nil
        }
        #expect(refusal { _ = try NoteSigner(text: verifier.text) }?.message.contains("verifier (public) key") == true)
        #expect(refusal { _ = try NoteVerifier(text: signer.text) }?.message.contains("signer (private) key") == true)
        #expect(refusal { _ = try NoteVerifier(text: "example.com+0000+AAAA") }?.kind == .unusable)
        #expect(refusal { _ = try NoteSigner(generatingFor: "with space") }?.kind == .unusable)
        let wrongID = verifier.text.replacingOccurrences(of: String(parts[1]), with: "00000000")
        #expect(refusal { _ = try NoteVerifier(text: wrongID) }?.message.contains("does not belong") == true)

        let checkpoint = Checkpoint(origin: signer.name, size: 3, root: MerkleTree.emptyRoot)
        let note = try signer.sign(checkpoint.text)
        #expect(try Checkpoint.open(note, verifier: verifier) == checkpoint)
        // Another key of the same name: its signature is not ours, so the note is unsigned for us.
        let other = try NoteSigner(generatingFor: signer.name)
        #expect(refusal { _ = try Checkpoint.open(note, verifier: other.verifier) }?.kind == .notVerified)
        // Another origin.
        let foreign = try NoteSigner(generatingFor: "example.org/other")
        let foreignNote = try foreign.sign(Checkpoint(origin: signer.name, size: 3, root: MerkleTree.emptyRoot).text)
        #expect(
            refusal { _ = try Checkpoint.open(foreignNote, verifier: foreign.verifier) }?.message.contains("origin")
                == true)
        // Every byte of the note matters.
        let bytes = Array(note.utf8)
        for index in bytes.indices {
            var flipped = bytes
            flipped[index] ^= 0x01
            let text = String(decoding: flipped, as: UTF8.self)
            #expect(refusal { _ = try Checkpoint.open(text, verifier: verifier) } != nil, "byte \(index)")
        }
    }

    @Test func proofsAndBundlesFromTheStoreVerifyAndTamperingIsCaught() async throws {
        let directory = try TemporaryDirectory()
        let store = try EventStore(path: directory.path("log.sqlite"))
        var events = EventFactory()
        for ticket in 0..<8 {
            try await store.append(events.conversation(messages: 10 + ticket), to: .test(ticket))
        }
        let signer = try NoteSigner(generatingFor: "example.com/ticketlog")
        let first = try await store.signCheckpoint(with: signer)
        for ticket in 0..<3 { try await store.append(events.conversation(messages: 5), to: .test(100 + ticket)) }
        let second = try await store.signCheckpoint(with: signer)
        #expect(first.checkpoint.size == 8 * 14 + 28 && second.checkpoint.size == 8 * 14 + 28 + 3 * 9)
        #expect(try await store.storedCheckpoint() == second)
        #expect(try await store.storedCheckpoint(size: first.checkpoint.size) == first)

        let lines = try await store.eventLines(AuditQuery(limit: 10_000)).map(\.line)
        for position in [1, 64, 65, 100, lines.count] {
            let proof = try await store.inclusionProof(position: Int64(position), in: second)
            let parsed = try InclusionProof(text: proof.text)
            #expect(parsed == proof)
            #expect(try parsed.verify(entry: lines[position - 1], verifier: signer.verifier) == second.checkpoint)
            #expect(throws: ProofError.self) {
                try parsed.verify(entry: lines[position % lines.count], verifier: signer.verifier)
            }
        }
        let consistency = try await store.consistencyProof(from: first.checkpoint.size, to: second.checkpoint.size)
        try ConsistencyProof(text: consistency.text).verify(old: first.checkpoint, new: second.checkpoint)

        let bundle = try await store.evidence(for: .test(3), in: second)
        #expect(bundle.entries.count == 13 + 4)
        let folder = directory.path("evidence")
        try bundle.write(to: folder, verifierKey: signer.verifier.text)
        let verified = try EvidenceBundle.verify(directory: folder, verifier: signer.verifier)
        #expect(verified.events == 17 && verified.stream == "ticket-3" && verified.checkpoint == second.checkpoint)

        // One changed character in an entry: its proof no longer leads to the signed root.
        let entries = folder + "/entries.ndjson"
        let original = try String(contentsOfFile: entries, encoding: .utf8)
        try original.replacingOccurrences(of: "Message 4 about", with: "Message 5 about")
            .write(toFile: entries, atomically: true, encoding: .utf8)
        do {
            _ = try EvidenceBundle.verify(directory: folder, verifier: signer.verifier)
            Issue.record("a changed entry verified")
        } catch {
            #expect(error.kind == .notVerified && error.message.contains("entries") == false)
        }
        try original.write(toFile: entries, atomically: true, encoding: .utf8)
        // A missing proof: unusable, naming the file.
        try FileManager.default.removeItem(atPath: folder + "/proofs/\(bundle.entries[2].position - 1).tlog-proof")
        do {
            _ = try EvidenceBundle.verify(directory: folder, verifier: signer.verifier)
            Issue.record("a truncated bundle verified")
        } catch {
            #expect(error.kind == .unusable && error.message.contains("tlog-proof"))
        }
    }

    @Test func verifyingAgainstACheckpointFindsAnEditARewrittenTreeAndACutBack() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let signer = try NoteSigner(generatingFor: "example.com/ticketlog")
        let signed: StoredCheckpoint
        do {
            let store = try EventStore(path: path)
            var events = EventFactory()
            for ticket in 0..<10 { try await store.append(events.conversation(messages: 6), to: .test(ticket)) }
            try await store.signCheckpoint(with: signer)
            for ticket in 10..<20 { try await store.append(events.conversation(messages: 6), to: .test(ticket)) }
            signed = try await store.signCheckpoint(with: signer)
            #expect(try await store.verify(against: signed.checkpoint, verifier: signer.verifier).holds)
        }
        #expect(signed.checkpoint.size == 200)
        // Someone with the file changes the time of event 150 (a column: no body to recompress).
        try sqlite3(
            path,
            """
            DROP TRIGGER events_are_immutable_update;
            UPDATE events SET occurred_at = occurred_at + 1 WHERE position = 150;
            """)
        var readOnly = EventStore.Configuration()
        readOnly.readOnly = true
        let store = try EventStore(path: path, configuration: readOnly)
        let comparison = try await store.verify(against: signed.checkpoint, verifier: signer.verifier)
        guard case .differs(let range) = comparison.outcome else {
            Issue.record("not found: \(comparison)")
            return
        }
        // The tile is certain (its signed subtree root no longer matches); the position inside
        // it comes from the leaf hints recorded at append time.
        #expect(range == 150...150, "\(comparison.detail)")
        #expect(comparison.detail.contains("positions 129–192"))

        // Someone who rewrites the file's own tree as well leaves nothing in it to trust but the
        // signed checkpoints stored in the log: the difference is after the older one (100).
        try sqlite3(
            path,
            """
            DROP TRIGGER merkle_nodes_are_immutable_delete;
            DELETE FROM merkle_nodes;
            """)
        let rewritten = try await store.verify(against: signed.checkpoint, verifier: signer.verifier)
        #expect(rewritten.outcome == .differs(firstDifference: 101...200), "\(rewritten)")
        #expect(rewritten.detail.contains("narrowed by the checkpoints"))
        // Cut back: the events after 180 are gone.
        try sqlite3(
            path,
            """
            DROP TRIGGER events_are_immutable_delete;
            DELETE FROM events WHERE position > 180;
            """)
        let cut = try await store.verify(against: signed.checkpoint, verifier: signer.verifier)
        #expect(cut.outcome == .cutBack(eventsInLog: 180))
    }
}
