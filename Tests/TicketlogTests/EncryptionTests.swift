import Foundation
import Testing

@testable import Ticketlog

/// Sealed personal content (issue 17): what an encrypted log stores, reads and refuses.
@Suite(.timeLimit(.minutes(2))) struct EncryptionTests {
    static func configuration(_ key: MasterKey?) -> EventStore.Configuration {
        var configuration = EventStore.Configuration()
        configuration.durability = .normal
        configuration.masterKey = key
        return configuration
    }

    /// Every byte the log keeps on disk: the database file and its WAL.
    static func rawBytes(_ path: String) throws -> Data {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        if let wal = try? Data(contentsOf: URL(fileURLWithPath: path + "-wal")) { bytes.append(wal) }
        return bytes
    }

    @Test func personalFieldsAreSealedOnDiskAndOpenOnRead() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let master = MasterKey.generate()
        let store = try EventStore(path: path, configuration: Self.configuration(master))
        var events = EventFactory()
        let texts = (0..<30).map { "Confidential note \($0): the launch moves to the \($0 + 1)th, keep it quiet" }
        var conversation = events.conversation(messages: 0)
        conversation += texts.map { events.message($0, by: Actor(id: "kim", role: .creator)) }
        let result = try await store.append(conversation, to: .test(1))
        // A retry of the same append is recognised, though sealing is randomised.
        #expect(try await store.append(conversation, to: .test(1)).wasAlreadyStored)
        #expect(result.positions == 1...Int64(conversation.count))

        let messages = try await store.messages(of: .test(1), limit: 100)
        #expect(messages.compactMap(\.text).suffix(30) == texts[...])
        let audit = try await store.auditTrail(AuditQuery(stream: .test(1)))
        #expect(audit.count == conversation.count)
        #expect(try await store.readStream(.test(1)).map(\.proposed) == conversation)
        #expect(try await store.verify().isValid)

        // On disk: no text, no title, no URL in the clear; sealed strings in the entries.
        let raw = try Self.rawBytes(path)
        for text in texts + ["https://cdn.example.com/d.mp4"] {
            #expect(raw.range(of: Data(text.utf8)) == nil, "\(text) is on disk")
        }
        let lines = try await store.eventLines(AuditQuery(stream: .test(1), limit: 100)).map {
            String(decoding: $0.line, as: UTF8.self)
        }
        #expect(lines.last?.contains("\"text\":\"sealed:v1:") == true)
    }

    @Test func aWrongOrMissingMasterKeyIsRefusedAtOpenAndNothingIsWritten() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let master = MasterKey.generate()
        do {
            let store = try EventStore(path: path, configuration: Self.configuration(master))
            var events = EventFactory()
            try await store.append(events.conversation(messages: 3), to: .test(1))
        }
        let before = try Self.rawBytes(path)
        for key in [MasterKey.generate(), nil] {
            do {
                _ = try EventStore(path: path, configuration: Self.configuration(key))
                Issue.record("opened with \(key?.fingerprint ?? "no key")")
            } catch let error as EventStoreError {
                #expect(error.code == .masterKey)
                #expect(error.message.contains(master.fingerprint), "\(error.message)")
            }
            #expect(try Self.rawBytes(path) == before, "nothing written")
        }
        // Read-only without the key: it opens, verifies, and shows sealed fields as stored.
        var readOnly = Self.configuration(nil)
        readOnly.readOnly = true
        let reader = try EventStore(path: path, configuration: readOnly)
        #expect(try await reader.verify().isValid)
        let posted = try await reader.readStream(.test(1)).compactMap { event -> String? in
            if case .messagePosted(let message) = event.payload { return message.text }
            return nil
        }
        #expect(posted.count == 3 && posted.allSatisfy { $0.hasPrefix("sealed:v1:") })
        // The right key opens them again.
        let again = try EventStore(path: path, configuration: Self.configuration(master))
        #expect(try await again.messages(of: .test(1), limit: 10).count == 3)
    }

    @Test func sealedContentOfAnotherLogIsNotImported() async throws {
        let directory = try TemporaryDirectory()
        let store = try EventStore(
            path: directory.path("log.sqlite"), configuration: Self.configuration(MasterKey.generate()))
        var events = EventFactory()
        try await store.append(events.conversation(messages: 2), to: .test(1))
        let export = directory.path("export")
        _ = try await store.export(to: export, ExportOptions(format: .ndjson))
        let other = try EventStore.inMemory(configuration: Self.configuration(MasterKey.generate()))
        do {
            _ = try await other.importEvents(fromNDJSON: export + "/events.ndjson")
            Issue.record("sealed content was imported")
        } catch let error as EventStoreError {
            #expect(error.message.contains("encrypted content of another log"), "\(error.message)")
        }
        #expect(try await other.headPosition() == 0)
    }

    @Test func aPlaintextLogEncryptsWhatIsAppendedOnceAKeyIsGiven() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var events = EventFactory()
        do {
            let store = try EventStore(path: path, configuration: Self.configuration(nil))
            try await store.append(events.conversation(messages: 2), to: .test(1))
        }
        let master = MasterKey.generate()
        let store = try EventStore(path: path, configuration: Self.configuration(master))
        try await store.append([events.message("sealed from now on")], to: .test(1))
        #expect(try await store.messages(of: .test(1), limit: 10).compactMap(\.text).last == "sealed from now on")
        #expect(try sqlite3(path, "SELECT value FROM meta WHERE key = 'sealed_from_position'") == "7\n")
        #expect(try Self.rawBytes(path).range(of: Data("sealed from now on".utf8)) == nil)
        #expect(store.sealedFromPosition == 7)
        let status = try #require(try await store.contentEncryption())
        #expect(status.masterKeyFingerprint == master.fingerprint && status.sealedFromPosition == 7)
        #expect(status.contentKeys == 1 && status.erasedKeys == 0)
        // sam wrote in plaintext before: that cannot be shredded, and nothing is erased.
        do {
            _ = try await store.erase(
                .subject("sam"), requestedBy: "sam", reason: "GDPR", by: Actor(id: "ada", role: .admin))
            Issue.record("erased plaintext")
        } catch let error as EventStoreError {
            #expect(error.code == .rejected && error.message.contains("before encryption was turned on"))
        }
        #expect(try await store.headPosition() == 7)
    }
}

/// Sealed fields kept raw in the stored body (``SealedPacking``).
@Suite(.timeLimit(.minutes(3))) struct SealedPackingTests {
    @Test func packingRoundTripsAndLeavesEverythingElseAlone() throws {
        let key = ContentKey.generate(for: ContentKeyScope(subject: "kim", stream: "ticket-1", period: "2026-12"))
        let event = UUID()
        var random = SeededGenerator(seed: 3)
        for length in [0, 1, 2, 3, 50, 300, 2_000] {
            let text = String(
                (0..<length).map { _ in Character(UnicodeScalar(UInt8.random(in: 32...126, using: &random))) })
            let sealed = try SealedField.seal(text, key: key, event: event, path: "text")
            let stored = Array(
                #"{"origin":{"kind":"local"},"payload":{"attachments":[{"kind":"image","url":"\#(sealed)"}],"messageId":"m-1","text":"\#(sealed)"}}"#
                    .utf8)
            let packed = try #require(SealedPacking.pack(stored))
            #expect(packed.count < stored.count || length < 3)
            #expect(SealedPacking.unpack(packed) == stored)
        }
        // Nothing sealed, or only look-alikes: nothing to pack.
        for plain in [
            #"{"payload":{"text":"hello"}}"#, #"{"payload":{"text":"sealed:v1:short:AAAA"}}"#,
            #"{"payload":{"text":"a \"sealed:v1:AAAAAAAAAAAAAAAA:AAAA\" quoted"}}"#,
            #"{"payload":{"text":"sealed:v1:AAAAAAAAAAAAAAAA:not base64!"}}"#,
        ] {
            #expect(SealedPacking.pack(Array(plain.utf8)) == nil, "\(plain)")
        }
        #expect(SealedPacking.unpack([0x7b, 0x01, 0x05, 0x00]) == nil, "a length beyond the end")
    }

    @Test func anEncryptedLogStoresSealedFieldsPackedAndReadsThemBack() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        var configuration = EventStore.Configuration()
        configuration.masterKey = MasterKey.generate()
        configuration.dictionaryTrainingThreshold = 100
        let store = try EventStore(path: path, configuration: configuration)
        var events = EventFactory()
        for ticket in 0..<10 { try await store.append(events.conversation(messages: 20), to: .test(ticket)) }
        let packed = try sqlite3(path, "SELECT count(*) FROM events WHERE codec >= \(BodyCodec.sealedPacked)")
        #expect(Int(packed.trimmingCharacters(in: .whitespacesAndNewlines))! >= 200)
        #expect(try await store.verify().isValid)
        #expect(try await store.messages(of: .test(3), limit: 100).allSatisfy { $0.text?.hasPrefix("Message") == true })
        #expect(try await store.dictionaryUsage().allSatisfy { $0.id < BodyCodec.sealedPacked })
        // Rebuilding the projections reads every body back.
        #expect(try await store.checkProjections().holds)
    }
}
