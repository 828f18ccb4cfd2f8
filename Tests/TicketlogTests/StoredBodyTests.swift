import Foundation
import Synthetic
import Testing

@testable import Ticketlog

/// Format 2's split of an event into row columns and a stored body, and the decoder that reads
/// them without JSONDecoder.
@Suite(.timeLimit(.minutes(3))) struct StoredBodyTests {
    static func parts(_ event: ProposedEvent, stream: StreamID = .test(1)) throws -> (
        canonical: [UInt8], stored: [UInt8], columns: EventColumns
    ) {
        let body = EventBody(
            event, stream: stream, recordedAt: Timestamp(microsecondsSinceEpoch: 1_795_000_000_000_000))
        let canonical = try CanonicalJSON.encode(body)
        return (canonical, try #require(StoredBody.strip(canonical)), EventColumns(body))
    }

    @Test func splicingTheStrippedBodyGivesBackTheCanonicalBytes() throws {
        var random = SplitMix(seed: 11)
        for _ in 0..<2_000 {
            let (canonical, stored, columns) = try Self.parts(CanonicalWriterTests.randomEvent(&random))
            #expect(StoredBody.splice(stored, columns: columns) == canonical)
            let text = String(decoding: stored, as: UTF8.self)
            for key in ["\"actor\":", "\"id\":", "\"occurredAt\":", "\"recordedAt\":", "\"stream\":", "\"type\":"] {
                #expect(!text.hasPrefix("{\(key)") && !text.contains(",\(key)"), "\(text) still holds \(key)")
            }
        }
    }

    /// The export's and (with issue 16) the Merkle leaves' bytes: a RecordedEvent's JSON.
    @Test func theLineIsTheRecordedEventsJSON() throws {
        var random = SplitMix(seed: 13)
        for index in 0..<1_000 {
            let event = CanonicalWriterTests.randomEvent(&random)
            let (canonical, stored, columns) = try Self.parts(event)
            let recorded = try EventStore.decodeBody(canonical, position: 1).recorded(
                position: Int64(index) * 7_919 + 1, version: Int64(index % 50) + 1)
            let line = StoredBody.line(stored, columns: columns, position: recorded.position, version: recorded.version)
            #expect(line == (try CanonicalJSON.encode(recorded)))
        }
    }

    @Test func theFastDecoderReadsWhatJSONDecoderReads() throws {
        var random = SplitMix(seed: 12)
        for _ in 0..<2_000 {
            let event = CanonicalWriterTests.randomEvent(&random)
            let (canonical, stored, columns) = try Self.parts(event)
            let fast = try #require(
                StoredBodyDecoder.decode(stored, columns: columns, position: 7, version: 3),
                "\(String(decoding: stored, as: UTF8.self))")
            let general = try EventStore.decodeBody(canonical, position: 7).recorded(position: 7, version: 3)
            #expect(fast == general)
            #expect(fast.proposed == event)
        }
    }

    @Test func anUnknownTypeIsLeftToJSONDecoder() throws {
        let event = ProposedEvent(
            actor: Actor(id: "bot", role: .system),
            payload: .unknown(type: EventType(rawValue: "survey.answered"), payload: .object(["score": .integer(9)])))
        let (_, stored, columns) = try Self.parts(event)
        #expect(StoredBodyDecoder.decode(stored, columns: columns, position: 1, version: 1) == nil)
        let read = try EventStore.decodeRecord(stored: stored, columns: columns, position: 1, version: 1)
        #expect(read.proposed == event)
    }

    /// Anything but the writer's exact form goes the general way (which may accept or refuse it).
    @Test(arguments: [
        #"{"origin":{"kind":"local"},"payload":{"messageId":"m","text":"hi","extra":"x"}}"#,
        #"{"origin":{"kind":"local"},"payload":{"text":"hi","messageId":"m"}}"#,
        #"{"origin":{"kind":"local"},"payload":{"messageId":"m","text":null}}"#,
        #"{"origin":{"kind":"local"},"payload":{"messageId":"m","text":"hi"} }"#,
        #"{"origin":{"kind":"local","webhookId":"w"},"payload":{"messageId":"m","text":"hi"}}"#,
        #"{"origin":{"kind":"elsewhere"},"payload":{"messageId":"m","text":"hi"}}"#,
        #"{"payload":{"messageId":"m","text":"hi"},"origin":{"kind":"local"}}"#,
        #"{"origin":{"kind":"local"},"payload":{"attachments":[],"messageId":"m","text":"hi"}}"#,
        #"{"origin":{"kind":"local"},"payload":{"messageId":"m","text":"bad \x escape"}}"#,
    ])
    func aBodyNotInTheWritersFormIsNotReadFast(_ body: String) throws {
        let columns = EventColumns(
            id: UUID(), stream: "ticket-1", type: "message.posted", actor: Actor(id: "kim", role: .creator),
            occurredAt: 1, recordedAt: 2)
        #expect(StoredBodyDecoder.decode(Array(body.utf8), columns: columns, position: 1, version: 1) == nil)
    }

    /// Invalid UTF-8 inside a string is refused, as JSONDecoder refuses it, also where the
    /// repaired text would have as many bytes (a truncated four-byte sequence becomes one U+FFFD).
    @Test(arguments: [[0xFF], [0xF0, 0x90, 0x80], [0x61, 0xC3], [0xED, 0xA0, 0x80]] as [[UInt8]])
    func invalidUTF8IsNotReadFast(_ invalid: [UInt8]) throws {
        let columns = EventColumns(
            id: UUID(), stream: "ticket-1", type: "message.posted", actor: Actor(id: "kim", role: .creator),
            occurredAt: 1, recordedAt: 2)
        let body =
            Array(#"{"origin":{"kind":"local"},"payload":{"messageId":"m","text":"ok "#.utf8) + invalid
            + Array(#"x"}}"#.utf8)
        #expect(StoredBodyDecoder.decode(body, columns: columns, position: 1, version: 1) == nil)
        var valid = body
        valid.replaceSubrange(body.count - 4 - invalid.count..<body.count - 4, with: Array("é".utf8))
        #expect(StoredBodyDecoder.decode(valid, columns: columns, position: 1, version: 1) != nil)
    }

    /// The string scans look at eight bytes at a time and jump to the next quote: escapes,
    /// backslash runs before a quote and text outside ASCII on either side of a word's edge.
    @Test(arguments: [
        #"C:\"#, #"C:\\"#, #"a \"quoted\" b"#, #"ends in a backslash and a quote \\\""#, "seven b\"x",
        "eight by\"x", "exactly sixteen!", "1234567\n1234567", "a tab\there and there", "12345678é", "é12345678",
        "1234567é", String(repeating: "long text ", count: 40) + "\\", "emoji at the end 🎬", "",
    ])
    func stringsAtEveryEdgeSpliceAndDecodeAsWritten(_ text: String) throws {
        let event = ProposedEvent(
            actor: Actor(id: "kim", role: .creator),
            payload: .messagePosted(
                MessagePosted(
                    messageID: "m", text: text,
                    attachments: [.init(kind: "file", url: "https://x/\(text)", title: text)])))
        let (canonical, stored, columns) = try Self.parts(event)
        #expect(StoredBody.splice(stored, columns: columns) == canonical)
        let fast = try #require(StoredBodyDecoder.decode(stored, columns: columns, position: 1, version: 1))
        #expect(fast.proposed == event)
    }

    /// A raw control character is refused (canonical JSON escapes them) wherever it is in a run.
    @Test(arguments: [0, 3, 8, 11, 16, 23])
    func aRawControlCharacterIsNotReadFast(_ offset: Int) throws {
        let columns = EventColumns(
            id: UUID(), stream: "ticket-1", type: "message.posted", actor: Actor(id: "kim", role: .creator),
            occurredAt: 1, recordedAt: 2)
        var text = Array("abcdefghijklmnopqrstuvwx".utf8)
        text[offset] = 0x1F
        let body =
            Array(#"{"origin":{"kind":"local"},"payload":{"messageId":"m","text":""#.utf8) + text + Array(#""}}"#.utf8)
        #expect(StoredBodyDecoder.decode(body, columns: columns, position: 1, version: 1) == nil)
    }

    @Test func theFastDecoderReadsTheWritersFormOfAMessage() throws {
        let columns = EventColumns(
            id: UUID(), stream: "ticket-1", type: "message.posted", actor: Actor(id: "kim", role: .creator),
            occurredAt: 1, recordedAt: 2)
        let body =
            #"{"causationId":"6a2f41a6-1e7e-4b8c-9d0b-2d6c1f1f0a11","origin":{"kind":"stream","messageId":"s-1"},"payload":{"messageId":"m","text":"caf\u00e9 \"ok\"\n\ud83c\udfac"}}"#
        let event = try #require(StoredBodyDecoder.decode(Array(body.utf8), columns: columns, position: 1, version: 1))
        #expect(event.payload == .messagePosted(MessagePosted(messageID: "m", text: "café \"ok\"\n🎬")))
        #expect(event.origin == .streamChat(webhookID: nil, messageID: "s-1"))
        #expect(event.causationID == UUID(uuidString: "6a2f41a6-1e7e-4b8c-9d0b-2d6c1f1f0a11"))
        #expect(event.correlationID == nil)
    }
}
