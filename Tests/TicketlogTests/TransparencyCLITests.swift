import Foundation
import Testing

@testable import Ticketlog

/// Issue 16 end to end: `keygen`, `checkpoint`, `prove`, `evidence`, `verify-evidence` and `verify
/// --checkpoint` run as a user and an auditor would, checked against implementations written in
/// Python from the RFC and C2SP texts alone (`Tests/Transparency/`), and the rewrite attack done
/// for real with the `sqlite3` shell and a script.
@Suite(.timeLimit(.minutes(5))) struct TransparencyCLITests {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Transparency")

    static func python() throws -> URL {
        guard let python = ProcessInfo.processInfo.environment["TICKETLOG_PYTHON"] else {
            throw TestFailure(
                "TICKETLOG_PYTHON is not set: run `make test`, which installs cryptography into .build-venv")
        }
        return URL(fileURLWithPath: python)
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func run(_ arguments: [String]) throws -> ProcessOutput {
        try runProcess(CLITests.executable, arguments)
    }

    /// A log of `tickets` conversations, closed again.
    static func makeLog(_ path: String, tickets: Int) async throws {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        let store = try EventStore(path: path, configuration: configuration)
        var events = EventFactory()
        for ticket in 0..<tickets {
            try await store.append(events.conversation(messages: 6 + ticket % 5), to: .test(1000 + ticket))
        }
        // A ticket of four events, for bundles small enough to flip every byte of.
        try await store.append(events.conversation(messages: 0), to: .test(1999))
    }

    @Test func treesMatchTheRFCsDefinitionWrittenInPython() throws {
        let result = try runProcess(try Self.python(), [Self.scripts.appendingPathComponent("rfc6962.py").path, "17"])
        #expect(result.status == 0, "\(result.stderr)")
        let trees = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(trees.count == 17)
        let leaves = (0..<17).map { MerkleTree.leafHash(Array("entry \($0)".utf8)) }
        for tree in trees {
            let size = try #require(tree["size"] as? Int)
            let prefix = Array(leaves.prefix(size))
            let perfect = TransparencyTests.perfect(prefix)
            #expect(MerkleTree.root(leaves: prefix).hexString == tree["root"] as? String, "root of \(size)")
            let paths = try #require(tree["paths"] as? [[String]])
            for index in 0..<size {
                let path = try MerkleTree.inclusionPath(index: Int64(index), size: Int64(size), perfect: perfect)
                #expect(path.map(\.hexString) == paths[index], "path of \(index) in \(size)")
            }
            let proofs = try #require(tree["consistency"] as? [String: [String]])
            for old in 1..<max(1, size) {
                let proof = try MerkleTree.consistencyPath(oldSize: Int64(old), newSize: Int64(size), perfect: perfect)
                #expect(proof.map(\.hexString) == proofs[String(old)], "consistency \(old) → \(size)")
            }
        }
    }

    @Test func anAuditorChecksABundleWithTwoIndependentVerifiersAndEveryFlippedByteIsRefused() async throws {
        let directory = try TemporaryDirectory()
        let log = directory.path("log.sqlite")
        try await Self.makeLog(log, tickets: 30)
        let key = directory.path("log.key")
        let keygen = try Self.run(["keygen", "--origin", "example.com/ticketlog", "--key", key])
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let verifier = directory.path("log.pub")
        #expect(try String(contentsOfFile: verifier, encoding: .utf8).hasPrefix("example.com/ticketlog+"))
        // Never replaced.
        #expect(try Self.run(["keygen", "--origin", "example.com/ticketlog", "--key", key]).status == 2)
        // The private key is not in the log.
        let signerText = try String(contentsOfFile: key, encoding: .utf8)
        // PRIVATE+KEY+<name>+<key hash>+<base64 key>: the base64 may hold "+" itself.
        let secret = String(signerText.split(separator: "+", maxSplits: 4).last!.dropLast())
        #expect(secret.count >= 40, "\(secret)")
        #expect(!(try Data(contentsOf: URL(fileURLWithPath: log)).contains(Data(secret.utf8))))

        let checkpoint = try Self.run(["checkpoint", "--database", log, "--key", key])
        #expect(checkpoint.status == 0, "\(checkpoint.stderr)")
        #expect(checkpoint.stdout.hasPrefix("example.com/ticketlog\n"))
        #expect(checkpoint.stdout.contains("\n\n— example.com/ticketlog "))

        let prove = try Self.run(["prove", "--database", log, "--position", "42"])
        #expect(prove.status == 0, "\(prove.stderr)")
        #expect(prove.stdout.hasPrefix("c2sp.org/tlog-proof@v1\nindex 41\n"))
        #expect(prove.stdout.hasSuffix(checkpoint.stdout))

        let bundle = directory.path("evidence")
        let evidence = try Self.run(["evidence", "--database", log, "--ticket", "1007", "--out", bundle])
        #expect(evidence.status == 0, "\(evidence.stderr)")
        let ours = try Self.run(["verify-evidence", bundle, "--key", verifier])
        #expect(
            ours.status == 0 && ours.stdout.hasPrefix("OK: 12 events of ticket-1007"), "\(ours.stdout)\(ours.stderr)")
        let python = try Self.python()
        let independent = Self.scripts.appendingPathComponent("verify_evidence.py").path
        let theirs = try runProcess(python, [independent, bundle, verifier])
        #expect(theirs.status == 0 && theirs.stdout.hasPrefix("OK 12 entries"), "\(theirs.stdout)\(theirs.stderr)")
        // The entry bytes are what `read` prints.
        let entries = try String(contentsOfFile: bundle + "/entries.ndjson", encoding: .utf8)
        let read = try Self.run(["read", "--database", log, "--stream", "ticket-1007"])
        #expect(read.stdout == entries, "the bundle's entries are read's lines")

        // Flip bytes of an entry, a proof's path, the checkpoint text and its signature: both
        // verifiers refuse every one.
        let proofName = try #require(
            try FileManager.default.contentsOfDirectory(atPath: bundle + "/proofs").sorted().first)
        let targets: [(file: String, offsets: [Int])] = [
            ("entries.ndjson", [2, 40, 120]),
            ("proofs/\(proofName)", [30, 40, 60]),
            ("checkpoint", [0, 25, checkpoint.stdout.utf8.count - 10]),
        ]
        for (file, offsets) in targets {
            let path = bundle + "/" + file
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            for offset in offsets {
                var flipped = original
                flipped[offset] ^= 0x04
                try flipped.write(to: URL(fileURLWithPath: path))
                let swift = try Self.run(["verify-evidence", bundle, "--key", verifier])
                #expect(swift.status == 1 || swift.status == 2, "\(file) byte \(offset): \(swift.stdout)")
                #expect(swift.stderr.contains(bundle), "the error names the file: \(swift.stderr)")
                let independentRun = try runProcess(python, [independent, bundle, verifier])
                #expect(independentRun.status == 1, "\(file) byte \(offset): \(independentRun.stdout)")
            }
            try original.write(to: URL(fileURLWithPath: path))
        }
        #expect(try Self.run(["verify-evidence", bundle, "--key", verifier]).status == 0)

        // Every byte of a small bundle's entries, a proof and the checkpoint, flipped one at a
        // time: refused by the engine's verifier and by the independent one.
        let small = directory.path("evidence-small")
        #expect(try Self.run(["evidence", "--database", log, "--ticket", "1999", "--out", small]).status == 0)
        let trusted = try NoteVerifier(text: String(contentsOfFile: verifier, encoding: .utf8))
        let smallProof = try #require(
            try FileManager.default.contentsOfDirectory(atPath: small + "/proofs").sorted().last)
        for file in ["entries.ndjson", "checkpoint", "proofs/\(smallProof)"] {
            let url = URL(fileURLWithPath: small + "/" + file)
            let original = try Data(contentsOf: url)
            var accepted: [Int] = []
            for offset in original.indices {
                var flipped = original
                flipped[offset] ^= 0x04
                try flipped.write(to: url)
                if (try? EvidenceBundle.verify(directory: small, verifier: trusted)) != nil { accepted.append(offset) }
            }
            try original.write(to: url)
            #expect(accepted.isEmpty, "\(file): flips at \(accepted) still verified")
            let every = try runProcess(python, [independent, "--every-byte-of", file, small, verifier])
            #expect(every.status == 0, "\(file): \(every.stdout)\(every.stderr)")
            #expect(every.stdout.hasPrefix("FLIPPED \(original.count) bytes, ACCEPTED []"), "\(every.stdout)")
        }
        #expect(try EvidenceBundle.verify(directory: small, verifier: trusted).events == 4)

        // Another key of the same origin: the signature is not by the key the auditor trusts.
        let otherKey = directory.path("other.key")
        #expect(try Self.run(["keygen", "--origin", "example.com/ticketlog", "--key", otherKey]).status == 0)
        let foreign = try Self.run(["verify-evidence", bundle, "--key", directory.path("other.pub")])
        #expect(foreign.status == 1 && foreign.stderr.contains("checkpoint"), "\(foreign.stderr)")
    }

    @Test func badKeysCheckpointsProofsAndBundlesAreOneLineErrorsAndNothingIsWritten() async throws {
        let directory = try TemporaryDirectory()
        let log = directory.path("log.sqlite")
        try await Self.makeLog(log, tickets: 10)
        let key = directory.path("log.key")
        #expect(try Self.run(["keygen", "--origin", "example.com/ticketlog", "--key", key]).status == 0)
        let verifier = directory.path("log.pub")

        // A signer key others can read.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        let loose = try Self.run(["checkpoint", "--database", log, "--key", key])
        #expect(loose.status == 2 && loose.stderr.contains("\(key): the signer key is readable by other users"))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        // The verifier key where the signer key goes, and a malformed key.
        let swapped = try Self.run(["checkpoint", "--database", log, "--key", verifier])
        #expect(swapped.status == 2 && swapped.stderr.contains("\(verifier): "), "\(swapped.stderr)")
        let garbage = directory.path("garbage.pub")
        try "not a key\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        let malformed = try Self.run(["verify-evidence", directory.path("nothing"), "--key", garbage])
        #expect(malformed.status == 2 && malformed.stderr.contains("\(garbage): not a verifier key"))
        #expect(malformed.stderr.split(separator: "\n").count == 1)

        let first = try Self.run(["checkpoint", "--database", log, "--key", key, "--out", directory.path("first.note")])
        #expect(first.status == 0)
        do {
            let store = try EventStore(path: log)
            var events = EventFactory(seed: 9)
            try await store.append(events.conversation(messages: 2), to: .test(5000))
        }
        #expect(try Self.run(["checkpoint", "--database", log, "--key", key]).status == 0)

        let before = try Data(contentsOf: URL(fileURLWithPath: log))
        // A checkpoint of another origin, even one signed with this key, is not this log's.
        let signer = try NoteSigner(text: String(contentsOfFile: key, encoding: .utf8))
        let foreignNote = directory.path("foreign.note")
        try signer.sign(Checkpoint(origin: "example.org/elsewhere", size: 3, root: MerkleTree.emptyRoot).text)
            .write(toFile: foreignNote, atomically: true, encoding: .utf8)
        let foreignOrigin = try Self.run(["verify", "--database", log, "--checkpoint", foreignNote, "--key", verifier])
        #expect(foreignOrigin.status == 2)
        #expect(
            foreignOrigin.stderr.contains("\(foreignNote): the checkpoint is from origin"), "\(foreignOrigin.stderr)")
        // A checkpoint of this origin signed by another key: does not verify.
        let otherKey = directory.path("other.key")
        #expect(try Self.run(["keygen", "--origin", "example.com/ticketlog", "--key", otherKey]).status == 0)
        let unsigned = try Self.run([
            "verify", "--database", log, "--checkpoint", directory.path("first.note"), "--key",
            directory.path("other.pub"),
        ])
        #expect(unsigned.status == 1 && unsigned.stderr.contains(directory.path("first.note")), "\(unsigned.stderr)")

        // A proof for another tree size in a bundle: the bundle's checkpoint is the newest.
        let bundle = directory.path("bundle")
        #expect(try Self.run(["evidence", "--database", log, "--ticket", "1003", "--out", bundle]).status == 0)
        let entry = try String(contentsOfFile: bundle + "/entries.ndjson", encoding: .utf8).split(separator: "\n")[0]
        let position = try #require(
            (try JSONSerialization.jsonObject(with: Data(entry.utf8)) as? [String: Any])?["position"] as? Int)
        let other = try Self.run([
            "prove", "--database", log, "--position", "\(position)", "--size",
            "\(try Self.size(directory.path("first.note")))",
        ])
        try other.stdout.write(toFile: bundle + "/proofs/\(position - 1).tlog-proof", atomically: true, encoding: .utf8)
        let mismatched = try Self.run(["verify-evidence", bundle, "--key", verifier])
        #expect(mismatched.status == 2 && mismatched.stderr.contains("another checkpoint"), "\(mismatched.stderr)")
        // A truncated bundle.
        try FileManager.default.removeItem(atPath: bundle + "/proofs/\(position - 1).tlog-proof")
        let truncated = try Self.run(["verify-evidence", bundle, "--key", verifier])
        #expect(truncated.status == 2 && truncated.stderr.contains("missing"), "\(truncated.stderr)")
        try FileManager.default.removeItem(atPath: bundle + "/checkpoint")
        #expect(try Self.run(["verify-evidence", bundle, "--key", verifier]).status == 2)
        // No verifying command wrote to the log.
        #expect(try Data(contentsOf: URL(fileURLWithPath: log)) == before)
    }

    static func size(_ note: String) throws -> Int64 {
        try Checkpoint(text: String(String(contentsOfFile: note, encoding: .utf8).split(separator: "\n\n")[0]) + "\n")
            .size
    }

    /// The attack a chain in the file cannot see: edit an event with the `sqlite3` shell,
    /// recompute every later link and the head with a script. Plain `verify` passes; against
    /// the checkpoint kept elsewhere, the log fails at the edited event. The same for a log cut
    /// back to fewer events.
    @Test func theRewriteAttackPassesPlainVerifyAndFailsTheCheckpoint() async throws {
        let directory = try TemporaryDirectory()
        let log = directory.path("log.sqlite")
        try await Self.makeLog(log, tickets: 30)
        let key = directory.path("log.key")
        #expect(try Self.run(["keygen", "--origin", "example.com/ticketlog", "--key", key]).status == 0)
        let note = directory.path("kept-elsewhere.note")
        #expect(try Self.run(["checkpoint", "--database", log, "--key", key, "--out", note]).status == 0)
        let size = try Self.size(note)
        let python = try Self.python()
        let rewrite = Self.scripts.appendingPathComponent("rewrite_chain.py").path

        func rewriteChain(_ path: String) throws {
            let export = directory.path("export-\(UUID().uuidString)")
            let exported = try Self.run(["export", "--database", path, "--format", "ndjson", "--out", export])
            #expect(exported.status == 0, "\(exported.stderr)")
            let sql = try runProcess(python, [rewrite, export + "/events.ndjson"])
            #expect(sql.status == 0, "\(sql.stderr)")
            // The attacker puts the triggers back, so nothing shows they were gone.
            try sqlite3(
                path,
                """
                BEGIN;
                DROP TRIGGER IF EXISTS events_are_immutable_update;
                DROP TRIGGER IF EXISTS events_are_immutable_delete;
                \(sql.stdout)
                CREATE TRIGGER events_are_immutable_update BEFORE UPDATE ON events
                BEGIN SELECT RAISE(ABORT, 'ticketlog events are immutable: UPDATE refused'); END;
                CREATE TRIGGER events_are_immutable_delete BEFORE DELETE ON events
                BEGIN SELECT RAISE(ABORT, 'ticketlog events are immutable: DELETE refused'); END;
                COMMIT;
                """)
        }

        let edited = directory.path("edited.sqlite")
        try FileManager.default.copyItem(atPath: log, toPath: edited)
        try sqlite3(
            edited,
            """
            DROP TRIGGER events_are_immutable_update;
            UPDATE events SET occurred_at = occurred_at + 3600000000 WHERE position = 200;
            """)
        #expect(try Self.run(["verify", "--database", edited]).status == 1, "the chain alone sees the edit")
        try rewriteChain(edited)
        let plain = try Self.run(["verify", "--database", edited])
        #expect(plain.status == 0 && plain.stdout.hasPrefix("OK: \(size) events"), "\(plain.stdout)\(plain.stderr)")
        #expect(plain.stderr.isEmpty, "not even a warning: \(plain.stderr)")
        let checked = try Self.run([
            "verify", "--database", edited, "--checkpoint", note, "--key", directory.path("log.pub"),
        ])
        #expect(checked.status == 1)
        #expect(checked.stdout.contains("CHECKPOINT FAILED at position 200: "), "\(checked.stdout)")
        #expect(checked.stdout.contains("positions 193–256 no longer hash to theirs"), "\(checked.stdout)")
        let json = try Self.run([
            "verify", "--database", edited, "--checkpoint", note, "--key", directory.path("log.pub"), "--json",
        ])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let comparison = try #require(object?["checkpoint"] as? [String: Any])
        let first = try #require(comparison["firstDifferingPosition"] as? Int)
        let last = try #require(comparison["lastPossiblePosition"] as? Int)
        #expect(object?["ok"] as? Bool == true && comparison["ok"] as? Bool == false)
        #expect(first == 200 && last == 200)

        let cut = directory.path("cut.sqlite")
        try FileManager.default.copyItem(atPath: log, toPath: cut)
        try sqlite3(
            cut,
            """
            DROP TRIGGER events_are_immutable_delete;
            DELETE FROM events WHERE position > \(size - 10);
            DELETE FROM streams WHERE key NOT IN (SELECT stream FROM events);
            UPDATE streams SET version = (SELECT max(version) FROM events WHERE events.stream = streams.key);
            """)
        try rewriteChain(cut)
        let plainCut = try Self.run(["verify", "--database", cut])
        #expect(plainCut.status == 0 && plainCut.stdout.hasPrefix("OK: \(size - 10) events"), "\(plainCut.stdout)")
        let checkedCut = try Self.run([
            "verify", "--database", cut, "--checkpoint", note, "--key", directory.path("log.pub"),
        ])
        #expect(checkedCut.status == 1)
        #expect(
            checkedCut.stdout.contains("CHECKPOINT FAILED at position \(size - 9): the log was cut back"),
            "\(checkedCut.stdout)")
        // The intact log matches.
        let intact = try Self.run([
            "verify", "--database", log, "--checkpoint", note, "--key", directory.path("log.pub"),
        ])
        #expect(intact.status == 0 && intact.stdout.contains("checkpoint: OK"), "\(intact.stdout)")
    }
}
