import Foundation
import Testing

@testable import Ticketlog

/// Erasure by destroying content keys (issue 17): the content goes, the proof stays.
@Suite(.timeLimit(.minutes(3))) struct ErasureTests {
    let kim = Actor(id: "kim", role: .creator)
    let jo = Actor(id: "jo", role: .creator)
    let ada = Actor(id: "ada", role: .admin)

    func post(_ text: String, by actor: Actor, _ factory: inout EventFactory) -> ProposedEvent {
        factory.message(text, by: actor)
    }

    /// Tickets 1–6, kim and jo writing in each; `texts[who]` collects what each wrote.
    func desk(_ store: EventStore) async throws -> [String: [String]] {
        var factory = EventFactory()
        var texts: [String: [String]] = [:]
        for ticket in 1...6 {
            var events = factory.conversation(messages: 0)
            for index in 0..<8 {
                let author = index % 2 == 0 ? kim : jo
                let text =
                    "\(author.id) wrote note \(index) in ticket \(ticket): budget is \(ticket * 1_000 + index) euros"
                texts[author.id, default: []].append(text)
                events.append(post(text, by: author, &factory))
            }
            try await store.append(events, to: .test(ticket))
        }
        return texts
    }

    @Test func erasingAPersonForgetsTheirContentAndKeepsEveryProof() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.masterKey = MasterKey.generate()
        let store = try EventStore(path: path, configuration: configuration)
        let texts = try await desk(store)
        let signer = try NoteSigner(generatingFor: "example.com/ticketlog")
        let before = try await store.signCheckpoint(with: signer)
        let lines = try await store.eventLines(AuditQuery(limit: 10_000)).map(\.line)
        let proof = try await store.inclusionProof(position: 20, in: before)
        let kimsWrappedKeys = try sqlite3(path, "SELECT hex(wrapped) FROM content_keys WHERE subject = 'kim'")
            .split(separator: "\n").map { [UInt8](hexString: $0)! }
        // One key per ticket and month: the messages are of November, the deliverables of now.
        #expect(kimsWrappedKeys.count == 12)

        let report = try await store.erase(
            .subject("kim"), requestedBy: "kim", reason: "GDPR request 2026-114", by: ada)
        #expect(report.keys.count == 12 && report.scrubbed)

        // The proof holds: the chain, the checkpoint made before, a proof made before.
        #expect(try await store.verify().isValid)
        #expect(try await store.verify(against: before.checkpoint, verifier: signer.verifier).holds)
        #expect(try proof.verify(entry: lines[19], verifier: signer.verifier) == before.checkpoint)
        // kim's words are gone from every read; jo's read as before.
        for ticket in 1...6 {
            let messages = try await store.messages(of: .test(ticket), limit: 100)
            let byKim = messages.filter { $0.author.id == "kim" }
            let byJo = messages.filter { $0.author.id == "jo" }
            #expect(byKim.count == 4 && byKim.allSatisfy { $0.text == "" })
            #expect(byJo.compactMap(\.text) == texts["jo"]!.filter { $0.contains("ticket \(ticket):") })
            // The current state read from the projections shows the erasure as the fold does.
            try await ProjectionTests.expectCurrentStateFromProjections(
                store, .test(ticket), equals: try await store.ticketState(.test(ticket)))
            // At every point of the ticket's history, kim's messages read as erased.
            for position in stride(from: Int64(ticket - 1) * 12 + 5, through: Int64(ticket) * 12, by: 2) {
                let replayed = try await store.ticketState(.test(ticket), at: .position(position))
                let kims: [TicketState.Message] = replayed.messages.filter { $0.author.id == "kim" }
                #expect(!kims.isEmpty && kims.allSatisfy { $0.text == "" })
            }
        }
        let erasedEvents = try await store.readStream(.test(1)).filter(\.contentErased)
        #expect(erasedEvents.count == 5, "four messages and a deliverable")
        // The audit trail shows the erasure and the erased messages as erased.
        let audit = try await store.auditTrail(AuditQuery(limit: 10_000))
        #expect(audit.last?.summary.contains("ada (admin) erased the content of kim (12 key(s)), asked by kim") == true)
        #expect(audit.contains { $0.summary.contains("posted message") && $0.summary.contains("[erased]") })
        // No copy of a destroyed key anywhere in the file or its WAL (the free pages included).
        var raw = try Data(contentsOf: URL(fileURLWithPath: path))
        if let wal = try? Data(contentsOf: URL(fileURLWithPath: path + "-wal")) { raw.append(wal) }
        for wrapped in kimsWrappedKeys {
            #expect(raw.range(of: Data(wrapped)) == nil, "a destroyed key is still in the file")
            #expect(raw.range(of: Data(wrapped.prefix(24))) == nil)
        }
        for text in texts.values.joined() { #expect(raw.range(of: Data(text.utf8)) == nil) }
        // Rebuilt projections equal the incremental ones.
        #expect(try await store.checkProjections().holds)

        // Reopened with the master key, kim's content stays erased; kim can write again, under a
        // new key.
        let reopened = try EventStore(path: path, configuration: configuration)
        var factory = EventFactory(seed: 7)
        try await reopened.append([post("kim is back", by: kim, &factory)], to: .test(1))
        let after = try await reopened.messages(of: .test(1), limit: 100).filter { $0.author.id == "kim" }
        #expect(after.map { $0.text ?? "-" } == ["", "", "", "", "kim is back"])
    }

    /// `ticketlog erase` run beside a serving process (two stores on one file): the serving one
    /// neither opens nor seals with the destroyed keys once the erasure committed — its next read
    /// shows the content erased, and what it appends next is sealed under a new key.
    @Test func anErasureByAnotherProcessIsSeenByThisOne() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.masterKey = MasterKey.generate()
        let serving = try EventStore(path: path, configuration: configuration)
        _ = try await desk(serving)
        #expect(
            try await serving.messages(of: .test(1), limit: 100).contains { $0.text?.hasPrefix("kim wrote") == true })
        let erasing = try EventStore(path: path, configuration: configuration)
        _ = try await erasing.erase(.subject("kim"), requestedBy: "kim", reason: "GDPR", by: ada)
        // The serving process appends before it reads anything: sealed under a new key.
        var factory = EventFactory(seed: 9)
        try await serving.append([post("kim is back", by: kim, &factory)], to: .test(1))
        for store in [serving, erasing] {
            let kims = try await store.messages(of: .test(1), limit: 100).filter { $0.author.id == "kim" }
            #expect(kims.map { $0.text ?? "-" } == ["", "", "", "", "kim is back"])
        }
        #expect(try await serving.verify().isValid)
    }

    @Test(arguments: StoreKind.backends) func ticketsAndMonthsAreErasedByTheirOwnKeys(_ kind: StoreKind) async throws {
        let (store, lease) = try await kind.make { $0.masterKey = MasterKey.generate() }
        defer { withExtendedLifetime(lease) {} }
        _ = try await desk(store)
        let ticket = try await store.erase(
            .ticket(.test(2)), requestedBy: "retention policy", reason: "closed 2019", by: ada)
        #expect(ticket.keys.count == 3, "kim in November and now, jo in November")
        #expect(try await store.messages(of: .test(2), limit: 100).allSatisfy { $0.text == "" })
        #expect(try await store.messages(of: .test(3), limit: 100).allSatisfy { $0.text != "" })
        // The desk's events are of November 2026: a cut before December erases them all.
        let retention = try await store.erase(
            .before(Timestamp(iso8601: "2026-12-15T00:00:00Z")!), requestedBy: "retention policy", reason: "N years",
            by: ada)
        #expect(retention.keys.count == 10)
        #expect(try await store.messages(of: .test(3), limit: 100).allSatisfy { $0.text == "" })
        #expect(try await store.readStream(.erasures).count == 2)
    }

    @Test func aRestoredBackupReplaysTheLiveLogsErasures() async throws {
        let directory = try TemporaryDirectory()
        let live = directory.path("live.sqlite")
        let backup = directory.path("backup.sqlite")
        var configuration = EventStore.Configuration()
        configuration.masterKey = MasterKey.generate()
        let store = try EventStore(path: live, configuration: configuration)
        let texts = try await desk(store)
        _ = try await store.scrub()
        try FileManager.default.copyItem(atPath: live, toPath: backup)
        let kimsKeys = try sqlite3(backup, "SELECT hex(wrapped) FROM content_keys WHERE subject = 'kim'")
            .split(separator: "\n").map { [UInt8](hexString: $0)! }
        _ = try await store.erase(.subject("kim"), requestedBy: "kim", reason: "GDPR", by: ada)

        // The backup, restored, still reads kim's words, until the live log's erasures are replayed.
        let restored = try EventStore(path: backup, configuration: configuration)
        #expect(
            try await restored.messages(of: .test(1), limit: 100).contains { $0.text?.hasPrefix("kim wrote") == true })
        let report = try await restored.replayErasures(from: store, by: ada)
        #expect(report.keys.count == 12 && report.scrubbed)
        for ticket in 1...6 {
            let kims = try await restored.messages(of: .test(ticket), limit: 100).filter { $0.author.id == "kim" }
            #expect(kims.count == 4 && kims.allSatisfy { $0.text == "" })
        }
        let raw = try Data(contentsOf: URL(fileURLWithPath: backup))
        for wrapped in kimsKeys { #expect(raw.range(of: Data(wrapped)) == nil) }
        #expect(texts["jo"]!.count == 24)
        #expect(try await restored.replayErasures(from: store, by: ada).keys.isEmpty, "done once")
        #expect(try await restored.verify().isValid)
    }

    @Test func rotatingTheMasterKeyRewrapsKeysAndChangesNoEvent() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let old = MasterKey.generate()
        let new = MasterKey.generate()
        var configuration = EventStore.Configuration()
        configuration.masterKey = old
        let lines: [[UInt8]]
        do {
            let store = try EventStore(path: path, configuration: configuration)
            _ = try await desk(store)
            lines = try await store.eventLines(AuditQuery(limit: 1_000)).map(\.line)
        }
        #expect(throws: EventStoreError.self) { try EventStore.rotateMasterKey(path: path, from: new, to: old) }
        #expect(try EventStore.rotateMasterKey(path: path, from: old, to: new) == 18)
        #expect(throws: EventStoreError.self) { try EventStore(path: path, configuration: configuration) }
        configuration.masterKey = new
        let store = try EventStore(path: path, configuration: configuration)
        #expect(try await store.eventLines(AuditQuery(limit: 1_000)).map(\.line) == lines)
        #expect(try await store.messages(of: .test(3), limit: 100).allSatisfy { $0.text?.contains("ticket 3") == true })
        #expect(try await store.verify().isValid)
    }

    @Test(arguments: StoreKind.backends) func aPlaintextLogHasNothingToErase(_ kind: StoreKind) async throws {
        // One store at a time: a case holding a PostgreSQL lease while it waits for a second
        // one can wait for every case queued before it (`PostgresStoreLeases`).
        do {
            let (store, lease) = try await kind.make()
            defer { withExtendedLifetime(lease) {} }
            _ = try await store.erase(.subject("kim"), requestedBy: "kim", reason: "GDPR", by: ada)
            Issue.record("a plaintext log erased")
        } catch let error as EventStoreError {
            #expect(error.code == .rejected && error.message.contains("plaintext"))
        }
        let (encrypted, encryptedLease) = try await kind.make { $0.masterKey = MasterKey.generate() }
        defer { withExtendedLifetime(encryptedLease) {} }
        await #expect(throws: EventStoreError.self) {
            try await encrypted.erase(.subject("kim"), requestedBy: "kim", reason: " ", by: ada)
        }
        await #expect(throws: EventStoreError.self) {
            try await encrypted.erase(
                .subject("kim"), requestedBy: "kim\u{1b}[31m", reason: "GDPR", by: Actor(id: "ada", role: .admin))
        }
        await #expect(throws: EventStoreError.self) {
            try await encrypted.erase(
                .subject("kim"), requestedBy: "kim", reason: "GDPR", by: Actor(id: "ada\n#2 forged", role: .admin))
        }
        #expect(try await encrypted.headPosition() == 0, "a refused erasure writes nothing")
    }

    @Test(arguments: StoreKind.allCases.filter { $0 != .inMemory })
    func anErasureRacingAppendsLosesNoEvent(_ kind: StoreKind) async throws {
        let (store, lease) = try await kind.make { $0.masterKey = MasterKey.generate() }
        defer { withExtendedLifetime(lease) {} }
        let kim = self.kim
        let ada = self.ada
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var factory = EventFactory(seed: UInt64(100 + worker))
                    for index in 0..<50 {
                        try await store.append([factory.message("race \(worker)-\(index)", by: kim)], to: .test(worker))
                    }
                }
            }
            group.addTask {
                _ = try await store.erase(.subject("kim"), requestedBy: "kim", reason: "GDPR", by: ada)
            }
            try await group.waitForAll()
        }
        #expect(try await store.headPosition() == 201)
        #expect(try await store.verify().isValid)
        // Whatever was sealed with a key the erasure destroyed reads as erased; the rest as written.
        for worker in 0..<4 {
            for message in try await store.messages(of: .test(worker), limit: 100) {
                #expect(message.text == "" || message.text?.hasPrefix("race \(worker)-") == true)
            }
        }
    }
}

/// `ticketlog master-key` and `ticketlog erase`, run as an operator would.
@Suite(.timeLimit(.minutes(2))) struct ErasureCLITests {
    static func run(_ arguments: [String], key: String? = nil) throws -> ProcessOutput {
        try runProcess(CLITests.executable, arguments, environment: ["TICKETLOG_MASTER_KEY": key])
    }

    @Test func anOperatorEncryptsALogAndErasesAPerson() throws {
        let directory = try TemporaryDirectory()
        let log = directory.path("desk.sqlite")
        let keyFile = directory.path("master.key")
        let made = try Self.run(["master-key", "--out", keyFile])
        #expect(made.status == 0 && made.stdout.contains("fingerprint"), "\(made.stderr)")
        #expect((try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int) == 0o600)
        #expect(try Self.run(["master-key", "--out", keyFile]).status == 2, "never replaced")

        let demo = try Self.run(["demo", "--database", log, "--durability", "normal", "--master-key-file", keyFile])
        #expect(demo.status == 0, "\(demo.stderr)")
        // The demo's words are not on disk; with the key, the audit trail reads them.
        let raw = try Data(contentsOf: URL(fileURLWithPath: log))
        #expect(raw.range(of: Data("Friday works".utf8)) == nil)
        let audit = try Self.run(["audit", "--database", log, "--ticket", "1001", "--master-key-file", keyFile])
        #expect(audit.stdout.contains("Friday works"), "\(audit.stdout)\(audit.stderr)")
        // Without it, the sealed text shows as sealed, never as plaintext.
        let sealed = try Self.run(["audit", "--database", log, "--ticket", "1001"])
        #expect(sealed.status == 0 && !sealed.stdout.contains("Friday works") && sealed.stdout.contains("sealed:v1:"))

        // Another key, a key file others can read, no key for writing: refused, nothing written.
        let before = try Data(contentsOf: URL(fileURLWithPath: log))
        let other = directory.path("other.key")
        #expect(try Self.run(["master-key", "--out", other]).status == 0)
        let wrong = try Self.run([
            "erase", "--database", log, "--user", "kim", "--reason", "x", "--master-key-file", other,
        ])
        #expect(wrong.status == 2 && wrong.stderr.contains("is encrypted with master key"), "\(wrong.stderr)")
        let missing = try Self.run(["erase", "--database", log, "--user", "kim", "--reason", "x"])
        #expect(missing.status == 2 && missing.stderr.contains("give its master key"), "\(missing.stderr)")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: other)
        let loose = try Self.run(["read", "--database", log, "--master-key-file", other])
        #expect(loose.status == 2 && loose.stderr.contains("readable by other users"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: log)) == before)

        let erase = try Self.run(
            ["erase", "--database", log, "--user", "kim", "--reason", "GDPR request 2026-114", "--by", "ada"],
            key: try String(contentsOfFile: keyFile, encoding: .utf8))
        #expect(erase.status == 0 && erase.stdout.hasPrefix("erased: "), "\(erase.stdout)\(erase.stderr)")
        let after = try Self.run(["audit", "--database", log, "--master-key-file", keyFile])
        #expect(!after.stdout.contains("Friday works") && after.stdout.contains("[erased]"), "\(after.stdout)")
        #expect(after.stdout.contains("ada (admin) erased the content of kim"))
        #expect(try Self.run(["verify", "--database", log]).status == 0)
        let stats = try Self.run(["stats", "--database", log])
        #expect(stats.stdout.contains("content:           encrypted from position 1"), "\(stats.stdout)")
        #expect(stats.stdout.contains("1 erased"), "\(stats.stdout)")

        // A plaintext log has nothing to erase.
        let plain = directory.path("plain.sqlite")
        #expect(try Self.run(["demo", "--database", plain, "--durability", "normal"]).status == 0)
        let refused = try Self.run([
            "erase", "--database", plain, "--user", "kim", "--reason", "x", "--master-key-file", keyFile,
        ])
        #expect(refused.status != 0, "\(refused.stdout)\(refused.stderr)")
    }
}
