import Foundation
import Testing

@testable import Ticketlog

/// One event of every known type plus one of a type this build does not know, with fixed ids
/// and times: the golden fixture pins their canonical bytes.
let goldenBodies: [EventBody] = {
    let stream = StreamID.ticket("golden")!
    let at = Timestamp(microsecondsSinceEpoch: 1_795_000_000_123_456)
    let payloads: [EventPayload] = [
        .ticketOpened(TicketOpened(title: "Spring launch — vidéo \"30s\" / cut", brand: "acme", creator: "kim")),
        .agentAssigned(AgentAssigned(agent: "sam")),
        .agentUnassigned(AgentUnassigned(agent: "sam")),
        .memberJoined(MemberJoined(user: "kim", role: .creator)),
        .memberLeft(MemberLeft(user: "kim")),
        .messagePosted(
            MessagePosted(
                messageID: "m-1", text: "Line one\nline two\ttab 😀",
                attachments: [.init(kind: "image", url: "https://cdn.example.com/a.png", title: "mood board")])),
        .messageEdited(MessageEdited(messageID: "m-1", text: "edited")),
        .messageDeleted(MessageDeleted(messageID: "m-1")),
        .statusChanged(StatusChanged(from: "open", to: "resolved", note: "approved")),
        .deliverablePushed(
            DeliverablePushed(
                deliverableID: "d-1", title: "Draft", url: "https://cdn.example.com/d-1.mp4", kind: "video", note: nil)),
        .unknown(
            type: EventType(rawValue: "poll.created"),
            payload: .object([
                "question": .string("Which cut?"), "options": .array([.string("A"), .string("B")]),
                "closesInHours": .integer(48), "weight": .number(0.5), "anonymous": .bool(false), "extra": .null,
            ])),
    ]
    return payloads.enumerated().map { index, payload in
        var event = ProposedEvent(
            id: UUID(uuidString: String(format: "6f1c0000-0000-4000-8000-%012d", index))!,
            actor: Actor(id: "user-\(index)", role: Actor.Role.allCases[index % Actor.Role.allCases.count]),
            occurredAt: Timestamp(microsecondsSinceEpoch: at.microsecondsSinceEpoch + Int64(index)),
            payload: payload)
        if index == 1 {
            event.origin = .streamChat(webhookID: "wh-1", messageID: "m-9")
            event.correlationID = UUID(uuidString: "AAAAAAAA-0000-4000-8000-000000000001")
            event.causationID = UUID(uuidString: "BBBBBBBB-0000-4000-8000-000000000002")
        }
        return EventBody(event, stream: stream, recordedAt: at)
    }
}()

@Suite(.timeLimit(.minutes(3))) struct CodecTests {
    static let goldenURL = fixturesDirectory.appendingPathComponent("golden/canonical-bodies.ndjson")
    static let chainURL = fixturesDirectory.appendingPathComponent("golden/chain-head.txt")

    /// Set TICKETLOG_UPDATE_GOLDEN=1 to rewrite the fixture after a deliberate format change.
    static var updating: Bool { ProcessInfo.processInfo.environment["TICKETLOG_UPDATE_GOLDEN"] == "1" }

    @Test func canonicalBytesMatchTheGoldenFixture() throws {
        let lines = try goldenBodies.map { String(decoding: try CanonicalJSON.encode($0), as: UTF8.self) }
        if Self.updating {
            try FileManager.default.createDirectory(
                at: Self.goldenURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (lines.joined(separator: "\n") + "\n").write(to: Self.goldenURL, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOf: Self.goldenURL, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(golden.count == goldenBodies.count)
        for (line, expected) in zip(lines, golden) {
            #expect(line == expected)
        }
    }

    @Test func goldenBodiesDecodeToTheSameEvents() throws {
        let golden = try String(contentsOf: Self.goldenURL, encoding: .utf8).split(separator: "\n")
        for (line, expected) in zip(golden, goldenBodies) {
            let decoded = try CanonicalJSON.decode(EventBody.self, from: Array(line.utf8))
            #expect(decoded == expected)
            // Decoding and encoding again reproduces the stored bytes exactly (unknown types too).
            #expect(try CanonicalJSON.encode(decoded) == Array(line.utf8))
        }
    }

    @Test func goldenChainHeadIsStable() throws {
        var head = HashChain.genesis
        for (index, body) in goldenBodies.enumerated() {
            head = HashChain.link(
                previous: head, position: Int64(index + 1), version: Int64(index + 1),
                body: try CanonicalJSON.encode(body))
        }
        if Self.updating { try (head.hexString + "\n").write(to: Self.chainURL, atomically: true, encoding: .utf8) }
        let golden = try String(contentsOf: Self.chainURL, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(head.hexString == golden)
    }

    @Test func equalEventsEncodeIdentically() throws {
        let body = goldenBodies[5]
        let copy = try CanonicalJSON.decode(EventBody.self, from: try CanonicalJSON.encode(body))
        #expect(try CanonicalJSON.encode(copy) == CanonicalJSON.encode(body))
        // The same object built with its keys inserted in another order encodes the same.
        let forwards = JSONValue.object(["a": .integer(1), "b": .string("x"), "c": .bool(true)])
        var backwards: [String: JSONValue] = [:]
        for key in ["c", "b", "a"] { backwards[key] = forwards.objectValue![key] }
        #expect(try CanonicalJSON.encode(forwards) == CanonicalJSON.encode(JSONValue.object(backwards)))
        #expect(String(decoding: try CanonicalJSON.encode(forwards), as: UTF8.self) == #"{"a":1,"b":"x","c":true}"#)
    }

    @Test func unknownTypesRoundTripUntouched() throws {
        let raw =
            #"{"actor":{"id":"bot","role":"system"},"id":"6f1c0000-0000-4000-8000-000000000099","occurredAt":1,"origin":{"kind":"local"},"payload":{"list":[1,2.5,"three",null,{"nested":true}],"z":"last"},"recordedAt":2,"stream":"ticket-9","type":"survey.answered.v3"}"#
        let body = try CanonicalJSON.decode(EventBody.self, from: Array(raw.utf8))
        #expect(body.type.rawValue == "survey.answered.v3")
        guard case .unknown = body.payload else {
            Issue.record("an unknown type must decode as .unknown, got \(body.payload)")
            return
        }
        #expect(String(decoding: try CanonicalJSON.encode(body), as: UTF8.self) == raw)
    }

    @Test func aKnownTypeWithAMalformedPayloadIsRejected() throws {
        let raw =
            #"{"actor":{"id":"bot","role":"system"},"id":"6f1c0000-0000-4000-8000-000000000099","occurredAt":1,"origin":{"kind":"local"},"payload":{"text":"no message id"},"recordedAt":2,"stream":"ticket-9","type":"message.posted"}"#
        #expect(throws: DecodingError.self) { try CanonicalJSON.decode(EventBody.self, from: Array(raw.utf8)) }
    }
}

extension JSONValue {
    var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }
}

@Suite(.timeLimit(.minutes(3))) struct LZ4CodecTests {
    /// A dictionary made the way the store makes one: from event bodies.
    static func dictionary(id: Int64 = 1, compressionLevel: Int = 0) throws -> LZ4Dictionary {
        var content: [UInt8] = []
        var factory = EventFactory(seed: 7)
        while content.count < 32 * 1024 {
            let body = EventBody(factory.message(), stream: .test(1), recordedAt: .init(microsecondsSinceEpoch: 0))
            content += try CanonicalJSON.encode(body)
        }
        return LZ4Dictionary(id: id, content: content, compressionLevel: compressionLevel)
    }

    /// 200 message bodies, compressed and decoded back; the stored bytes.
    static func roundTrip(compressingWith dictionary: LZ4Dictionary, decodingWith decoder: LZ4Dictionary) throws -> (
        raw: Int, stored: Int
    ) {
        var factory = EventFactory(seed: 99)
        var raw = 0
        var stored = 0
        for _ in 0..<200 {
            let canonical = try CanonicalJSON.encode(
                EventBody(factory.message(), stream: .test(2), recordedAt: .init(microsecondsSinceEpoch: 5)))
            let (codec, blob) = BodyCodec.encode(canonical, dictionary: dictionary)
            #expect(codec == dictionary.id)
            let decoded = try blob.withUnsafeBytes { bytes in
                try BodyCodec.decode(codec: codec, blob: bytes, dictionary: decoder, position: nil)
            }
            #expect(decoded == canonical)
            raw += canonical.count
            stored += blob.count
        }
        return (raw, stored)
    }

    @Test(arguments: [0, 1, 4, 9, 12])
    func dictionaryCompressionRoundTripsAndPaysOff(level: Int) throws {
        let dictionary = try Self.dictionary(compressionLevel: level)
        let (raw, stored) = try Self.roundTrip(compressingWith: dictionary, decodingWith: dictionary)
        // Small events compress well only against a dictionary: require at least 1.5x.
        #expect(Double(raw) / Double(stored) > 1.5, "ratio \(Double(raw) / Double(stored))")
    }

    /// LZ4 HC writes the same block format: a reader that never compresses with HC decodes it,
    /// and it takes fewer bytes than the fast compressor.
    @Test func highCompressionIsTheSameFormatAndSmaller() throws {
        let fast = try Self.dictionary(compressionLevel: 0)
        let high = try Self.dictionary(compressionLevel: 4)
        let (_, fastBytes) = try Self.roundTrip(compressingWith: fast, decodingWith: fast)
        let (_, highBytes) = try Self.roundTrip(compressingWith: high, decodingWith: fast)
        #expect(highBytes < fastBytes, "HC \(highBytes) B, fast \(fastBytes) B")
    }

    /// HC working states are pooled: concurrent compressions must not share one.
    @Test func highCompressionFromManyTasksAtOnce() async throws {
        let dictionary = try Self.dictionary(compressionLevel: 4)
        let bodies = try (0..<64).map { index in
            var factory = EventFactory(seed: UInt64(index))
            return try CanonicalJSON.encode(
                EventBody(factory.message(), stream: .test(3), recordedAt: .init(microsecondsSinceEpoch: 9)))
        }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for round in 0..<20 {
                        let canonical = bodies[(worker * 7 + round) % bodies.count]
                        let (codec, blob) = BodyCodec.encode(canonical, dictionary: dictionary)
                        let decoded = try? blob.withUnsafeBytes { bytes in
                            try BodyCodec.decode(codec: codec, blob: bytes, dictionary: dictionary, position: nil)
                        }
                        if decoded != canonical { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test func incompressibleBodiesAreStoredRaw() throws {
        let dictionary = try Self.dictionary()
        let noise: [UInt8] = (0..<40).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ 17) }
        let (codec, blob) = BodyCodec.encode(noise, dictionary: dictionary)
        #expect(codec == BodyCodec.uncompressed)
        #expect(blob == noise)
    }

    @Test(arguments: ["truncated", "bad prefix", "huge prefix", "garbage", "wrong dictionary"])
    func corruptBlobsGiveATypedError(_ damage: String) throws {
        let dictionary = try Self.dictionary()
        let canonical = try CanonicalJSON.encode(goldenBodies[5])
        var (codec, blob) = BodyCodec.encode(canonical, dictionary: dictionary)
        var using = dictionary
        switch damage {
        case "truncated": blob.removeLast(blob.count / 3)
        case "bad prefix": blob = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + blob
        case "huge prefix": blob = [0x80, 0x80, 0x80, 0x80, 0x01] + blob.dropFirst(2)
        case "garbage":
            blob =
                [UInt8(canonical.count & 0x7f) | 0x80, UInt8(canonical.count >> 7)] + Array(repeating: 0xf0, count: 60)
        default:
            codec = 2
            using = try Self.dictionary(id: 3)
        }
        let error = #expect(throws: EventStoreError.self) {
            try blob.withUnsafeBytes { bytes in
                try BodyCodec.decode(codec: codec, blob: bytes, dictionary: using, position: 42)
            }
        }
        #expect(error?.code == .corruptRecord)
        #expect(error?.position == 42)
    }

    @Test func varintsRoundTrip() {
        for value: UInt64 in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 40, .max] {
            var bytes: [UInt8] = []
            BodyCodec.appendVarint(value, to: &bytes)
            let decoded = bytes.withUnsafeBytes { BodyCodec.readVarint($0) }
            #expect(decoded?.value == value)
            #expect(decoded?.size == bytes.count)
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct GoldenCompressedBodiesTests {
    static let dictionaryURL = fixturesDirectory.appendingPathComponent("golden/lz4-dictionary.bin")
    static let blobsURL = fixturesDirectory.appendingPathComponent("golden/lz4-bodies.hex")

    /// Bodies compressed by an earlier build stay readable: the fixture holds a dictionary and
    /// the golden bodies compressed against it, as hex, one per line.
    @Test func storedCompressedBodiesStayReadable() throws {
        if CodecTests.updating {
            let dictionary = try LZ4CodecTests.dictionary(id: 1)
            try Data(dictionary.content).write(to: Self.dictionaryURL)
            let lines = try goldenBodies.map { body in
                let (codec, blob) = BodyCodec.encode(try CanonicalJSON.encode(body), dictionary: dictionary)
                #expect(codec == 1)
                return blob.hexString
            }
            try (lines.joined(separator: "\n") + "\n").write(to: Self.blobsURL, atomically: true, encoding: .utf8)
        }
        let dictionary = LZ4Dictionary(id: 1, content: Array(try Data(contentsOf: Self.dictionaryURL)))
        let blobs = try String(contentsOf: Self.blobsURL, encoding: .utf8).split(separator: "\n")
        #expect(blobs.count == goldenBodies.count)
        for (hex, body) in zip(blobs, goldenBodies) {
            let blob = try #require([UInt8](hexString: hex))
            let canonical = try blob.withUnsafeBytes { bytes in
                try BodyCodec.decode(codec: 1, blob: bytes, dictionary: dictionary, position: nil)
            }
            #expect(canonical == (try CanonicalJSON.encode(body)))
        }
    }
}

@Suite(.timeLimit(.minutes(3))) struct HexTests {
    @Test func hexRoundTripsInEitherCaseAndRefusesAnythingElse() {
        let bytes: [UInt8] = [0x00, 0x0f, 0xa5, 0xff]
        #expect([UInt8](hexString: bytes.hexString) == bytes)
        #expect([UInt8](hexString: "000FA5FF") == bytes)
        #expect([UInt8](hexString: "") == [])
        for bad in ["0", "0g", "+f", "-1", " 0f", "0f "] {
            #expect([UInt8](hexString: bad) == nil, "\(bad)")
        }
        // A chain anchor's hash is exactly 64 hex digits; a sign is not a digit.
        #expect(ChainAnchor("7:" + String(repeating: "ab", count: 32))?.hash == Array(repeating: 0xab, count: 32))
        #expect(ChainAnchor("7:" + String(repeating: "+f", count: 32)) == nil)
        #expect(ChainAnchor("7:" + String(repeating: "ab", count: 31)) == nil)
    }
}

@Suite(.timeLimit(.minutes(3))) struct TimestampTests {
    @Test(
        arguments: [
            ("2026-11-18T11:06:40Z", 1_795_000_000_000_000),
            ("2026-11-18T11:06:40.123456Z", 1_795_000_000_123_456),
            ("2026-11-18T11:06:40.5Z", 1_795_000_000_500_000),
            ("2026-11-18T12:06:40.000001+01:00", 1_795_000_000_000_001),
            ("2026-11-18", 1_794_960_000_000_000),
        ] as [(String, Int64)])
    func parsesISO8601(_ text: String, _ micros: Int64) {
        #expect(Timestamp(iso8601: text)?.microsecondsSinceEpoch == micros)
    }

    @Test(arguments: ["", "yesterday", "2026-13-01", "1795000000", "2026-11-18T25:00:00Z"])
    func refusesWhatIsNotATime(_ text: String) {
        #expect(Timestamp(iso8601: text) == nil)
    }

    @Test func printsWhatItParses() {
        let time = Timestamp(microsecondsSinceEpoch: 1_795_000_000_123_456)
        #expect(time.description == "2026-11-18T11:06:40.123456Z")
        #expect(Timestamp(iso8601: time.description) == time)
        #expect(Timestamp(microsecondsSinceEpoch: -1).description == "1969-12-31T23:59:59.999999Z")
    }
}
