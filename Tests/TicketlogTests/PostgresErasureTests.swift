import Foundation
import Testing

@testable import Ticketlog
@testable import TicketlogPostgres

/// Content encryption and erasure on PostgreSQL (issues 17 and 19), with two nodes sharing the
/// log as two `serve` processes would: what one node erases, the other stops opening and
/// sealing with, and the proofs made before still hold.
@Suite(
    .timeLimit(.minutes(3)),
    .enabled(if: !PostgresTestServer.skipped, PostgresTestServer.skipReason)
)
struct PostgresErasureTests {
    let kim = Actor(id: "kim", role: .creator)
    let jo = Actor(id: "jo", role: .creator)
    let ada = Actor(id: "ada", role: .admin)

    static func node(_ location: PostgresLocation, _ key: MasterKey?) async throws -> EventStore {
        var configuration = EventStore.Configuration()
        configuration.masterKey = key
        configuration.maximumReaders = 1
        return try await EventStore.open(location, configuration: configuration)
    }

    @Test func anErasureOnOneNodeIsSeenByTheOtherAndKeepsEveryProof() async throws {
        let location = try await PostgresTestServer.freshLog()
        let key = MasterKey.generate()
        let first = try await Self.node(location, key)
        let second = try await Self.node(location, key)
        defer {
            Task {
                await first.close()
                await second.close()
            }
        }
        // kim and jo write in three tickets, through both nodes.
        var factory = EventFactory(seed: 17)
        var texts: [String: [String]] = [:]
        for ticket in 1...3 {
            try await first.append(factory.conversation(messages: 0), to: .test(ticket))
            for index in 0..<6 {
                let author = index % 2 == 0 ? kim : jo
                let text = "\(author.id) wrote zebra\(ticket)x\(index) about the budget in ticket \(ticket)"
                texts[author.id, default: []].append(text)
                try await (index < 3 ? first : second).append(factory.message(text, by: author), to: .test(ticket))
            }
        }
        // A retry of an append is recognised on either node, though sealing is randomised; the
        // same ids with another text are refused.
        let retried = factory.message("kim's retried note", by: kim)
        let original = try await first.append(retried, to: .test(4))
        let again = try await second.append(retried, to: .test(4))
        #expect(again.wasAlreadyStored && again.positions == original.positions)
        var forged = retried
        forged.payload = .messagePosted(MessagePosted(messageID: "forged", text: "another text"))
        await #expect(throws: EventStoreError.self) { try await first.append(forged, to: .test(4)) }
        texts["kim", default: []].append("kim's retried note")
        // Both nodes open everything; nothing is stored in plaintext.
        for node in [first, second] {
            let read = try await node.messages(of: .test(2), limit: 100).compactMap(\.text)
            #expect(
                read
                    == texts["kim"]!.filter { $0.hasSuffix("ticket 2") }.interleaved(
                        texts["jo"]!.filter { $0.hasSuffix("ticket 2") }))
        }
        let stored = try await first.readSession { session in
            try session.rows("SELECT body FROM events", []).compactMap { $0[0].blob }
        }
        for text in texts.values.joined() {
            #expect(!stored.contains { Data($0).range(of: Data(text.utf8)) != nil }, "plaintext stored: \(text)")
        }
        let signer = try NoteSigner(generatingFor: "example.com/ticketlog")
        let before = try await first.signCheckpoint(with: signer)
        let lines = try await first.eventLines(AuditQuery(limit: 1_000)).map(\.line)
        let proof = try await first.inclusionProof(position: 5, in: before)
        let kimsPositions = try await first.readSession { session in
            try session.rows(
                "SELECT position FROM messages WHERE author = 'kim'", []
            ).compactMap { $0[0].integer }
        }
        #expect(kimsPositions.count == 10)
        #expect(try await first.search(MessageSearch("zebra2x0")).count == 1)

        // The second node erases kim.
        let report = try await second.erase(.subject("kim"), requestedBy: "kim", reason: "GDPR request", by: ada)
        // A key per ticket and month — the messages are of November, the deliverables (the
        // factory's creator is kim) of now — made by each node that sealed content of that scope
        // first: both nodes wrote kim's November messages, the first one the note of ticket 4,
        // and the erasing node also forgets the key its retry of that note made and never wrote.
        #expect(report.keys.count == 11)
        #expect(report.scrubbed)

        // Nothing of kim's is left to find: no search document, no wrapped key.
        let left = try await first.readSession { session in
            (
                try session.value(
                    "SELECT count(*) FROM message_search WHERE position IN (\(kimsPositions.map(String.init).joined(separator: ", ")))"
                ).integer,
                try session.value("SELECT count(*) FROM content_keys WHERE subject = 'kim' AND wrapped IS NOT NULL")
                    .integer
            )
        }
        #expect(left.0 == 0 && left.1 == 0)

        // The first node, before it reads anything, drops its cached keys for kim in its next
        // write (it would seal with a destroyed key otherwise): kim writes again under a new
        // key, which both nodes open.
        try await first.append(factory.message("kim is back", by: kim), to: .test(1))
        for node in [first, second] {
            for ticket in 1...3 {
                let messages = try await node.messages(of: .test(ticket), limit: 100)
                #expect(
                    messages.filter { $0.author == kim }.map { $0.text ?? "-" }
                        == ["", "", ""] + (ticket == 1 ? ["kim is back"] : []))
                #expect(
                    messages.filter { $0.author == jo }.compactMap(\.text)
                        == texts["jo"]!.filter { $0.hasSuffix("ticket \(ticket)") })
            }
            let erasedEvents = try await node.readStream(.test(1)).filter(\.contentErased)
            #expect(erasedEvents.count == 4, "three messages and a deliverable")
            #expect(try await node.search(MessageSearch("zebra2x0")).isEmpty, "kim's words are not found")
            #expect(try await node.search(MessageSearch("zebra2x1")).count == 1, "jo's are")
        }
        #expect(
            try await first.readSession { session in
                try session.value("SELECT count(*) FROM content_keys WHERE subject = 'kim' AND wrapped IS NOT NULL")
                    .integer
            } == 1)

        // The proofs hold: the chain, the checkpoint made before, a proof made before; a rebuild
        // of the projections reads kim's content as erased, as the incremental ones do.
        #expect(try await first.verify().isValid)
        #expect(try await first.verify(against: before.checkpoint, verifier: signer.verifier).holds)
        #expect(try proof.verify(entry: lines[4], verifier: signer.verifier) == before.checkpoint)
        let incremental = try await PostgresTests.projectionRows(first)
        try await first.rebuildProjections()
        #expect(try await PostgresTests.projectionRows(first) == incremental)
        let audit = try await second.auditTrail(AuditQuery(limit: 1_000))
        #expect(audit.contains { $0.summary.contains("ada (admin) erased the content of kim (11 key(s))") })
    }

    /// `ticketlog erase` and `rotate-master-key` on a URL, run as an operator would.
    @Test func anOperatorErasesAPersonAndRotatesTheMasterKeyOnPostgres() async throws {
        let location = try await PostgresTestServer.freshLog()
        let url = PostgresTestServer.url(location)
        let directory = try TemporaryDirectory()
        let old = MasterKey.generate()
        let new = MasterKey.generate()
        let newFile = directory.path("new.key")
        #expect(
            FileManager.default.createFile(
                atPath: newFile, contents: Data((new.text + "\n").utf8), attributes: [.posixPermissions: 0o600]))
        let node = try await Self.node(location, old)
        var factory = EventFactory(seed: 5)
        try await node.append(factory.conversation(messages: 0), to: .test(1))
        try await node.append(factory.message("kim's secret plan", by: kim), to: .test(1))
        try await node.append(factory.message("jo's open answer", by: jo), to: .test(1))
        await node.close()
        func cli(_ arguments: [String], key: MasterKey?) async throws -> ProcessOutput {
            try await awaitProcess(CLITests.executable, arguments, environment: ["TICKETLOG_MASTER_KEY": key?.text])
        }

        let refused = try await cli(["erase", "--database", url, "--user", "kim", "--reason", "GDPR"], key: new)
        #expect(refused.status == 2 && refused.stderr.contains(old.fingerprint), "\(refused.stderr)")
        #expect(!refused.stderr.contains(location.password ?? "-"), "the password is not printed")
        let erased = try await cli(
            ["erase", "--database", url, "--user", "kim", "--reason", "GDPR request 7", "--by", "ada"], key: old)
        #expect(erased.status == 0, "\(erased.stderr)")
        #expect(erased.stdout.contains("content key(s) destroyed") && erased.stdout.contains("vacuumed"))

        let rotated = try await cli(
            ["rotate-master-key", "--database", url, "--new-key-file", newFile], key: old)
        #expect(rotated.status == 0 && rotated.stdout.contains(new.fingerprint), "\(rotated.stderr)")
        await #expect(throws: EventStoreError.self) { _ = try await Self.node(location, old) }
        let reopened = try await Self.node(location, new)
        let texts = try await reopened.messages(of: .test(1), limit: 10).map { "\($0.author.id): \($0.text ?? "-")" }
        #expect(texts == ["kim: ", "jo: jo's open answer"])
        #expect(try await reopened.verify().isValid)
        // Reading commands need no master key: verify and audit show what is stored.
        let verified = try await cli(["verify", "--database", url], key: nil)
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let audit = try await cli(["audit", "--database", url], key: nil)
        #expect(audit.stdout.contains("ada (admin) erased the content of kim"), "\(audit.stdout)")
        await reopened.close()
    }

    /// Encryption rolled out node by node: once one node opened the log with a master key, a
    /// node still running without it stops writing (its plaintext could never be erased) and
    /// says to restart it with the key.
    @Test func aNodeWithoutTheKeyStopsWritingOnceTheLogIsEncrypted() async throws {
        let location = try await PostgresTestServer.freshLog()
        let plain = try await Self.node(location, nil)
        var factory = EventFactory(seed: 11)
        try await plain.append(factory.conversation(messages: 1), to: .test(1))
        let key = MasterKey.generate()
        let encrypting = try await Self.node(location, key)
        try await encrypting.append(factory.message("sealed from now on", by: kim), to: .test(1))
        let head = try await encrypting.headPosition()
        do {
            try await plain.append(factory.message("in plaintext", by: jo), to: .test(1))
            Issue.record("a node without the master key wrote to an encrypted log")
        } catch let error as EventStoreError {
            #expect(error.code == .masterKey && error.message.contains("restart this one"), "\(error)")
        }
        #expect(try await encrypting.headPosition() == head, "nothing was written")
        #expect(
            try await encrypting.messages(of: .test(1), limit: 10).compactMap(\.text).last == "sealed from now on")
        await plain.close()
        await encrypting.close()
    }

    /// `ticketlog copy` of an encrypted file to PostgreSQL with the master key: the target's
    /// projections are built with the texts opened — the search index included — row for row
    /// the file's; the log there is written and erased like the file.
    @Test func anEncryptedFileCopiedWithItsKeyIsSearchableOnPostgres() async throws {
        let directory = try TemporaryDirectory()
        let key = MasterKey.generate()
        let file = try await PostgresTests.makeDesk(in: directory, masterKey: key)
        let location = try await PostgresTestServer.freshDatabase()
        let copied = try await awaitProcess(
            CLITests.executable,
            ["copy", "--from", directory.path("desk.sqlite"), "--to", PostgresTestServer.url(location)],
            environment: ["TICKETLOG_MASTER_KEY": key.text])
        #expect(copied.status == 0, "\(copied.stdout)\(copied.stderr)")
        let node = try await Self.node(location, key)
        #expect(try await PostgresTests.projectionRows(node) == PostgresTests.projectionRows(file))
        let word = "dictionary"
        #expect(try await node.search(MessageSearch(word)).count == 6, "the six texts written after the dictionary")
        #expect(try await file.search(MessageSearch(word)).count == 6)
        await node.close()
    }

    @Test func aWrongOrMissingMasterKeyIsRefusedAndNothingIsWritten() async throws {
        let location = try await PostgresTestServer.freshLog()
        let key = MasterKey.generate()
        let node = try await Self.node(location, key)
        var factory = EventFactory(seed: 3)
        try await node.append(factory.conversation(messages: 2), to: .test(1))
        let head = try await node.headPosition()
        await node.close()

        let other = MasterKey.generate()
        do {
            _ = try await Self.node(location, other)
            Issue.record("opened with another master key")
        } catch let error as EventStoreError {
            #expect(error.code == .masterKey && error.message.contains(key.fingerprint), "\(error)")
            #expect(error.message.contains(other.fingerprint))
        }
        do {
            _ = try await Self.node(location, nil)
            Issue.record("opened for writing without the master key")
        } catch let error as EventStoreError {
            #expect(error.code == .masterKey && error.message.contains("holds encrypted content"), "\(error)")
        }
        let again = try await Self.node(location, key)
        #expect(try await again.headPosition() == head)
        #expect(try await again.messages(of: .test(1), limit: 10).allSatisfy { $0.text?.isEmpty == false })
        await again.close()
    }
}

extension Array {
    /// The elements of `self` and `other` taken in turn, starting with `self`'s.
    fileprivate func interleaved(_ other: [Element]) -> [Element] {
        var result: [Element] = []
        for index in 0..<Swift.max(count, other.count) {
            if index < count { result.append(self[index]) }
            if index < other.count { result.append(other[index]) }
        }
        return result
    }
}
