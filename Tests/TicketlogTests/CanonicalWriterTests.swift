import Foundation
import Synthetic
import Testing

@testable import Ticketlog

/// The fast canonical writer produces exactly JSONEncoder's canonical bytes.
@Suite(.timeLimit(.minutes(3))) struct CanonicalWriterTests {
    /// Strings JSON escaping can get wrong: every control character, quotes, backslashes,
    /// slashes, non-ASCII, emoji, line separators, NUL.
    static let tricky: [String] = [
        "", "plain", "quote \" and backslash \\ and slash /", "tab\tnewline\nreturn\rbackspace\u{8}formfeed\u{c}",
        String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) }), "\u{7f} del", "héllo wörld", "emoji 🎬👍🏽",
        "line\u{2028}separator\u{2029}", "nul \u{0} inside", "combining e\u{301}", "中文", "https://x.test/a?b=c&d=e",
    ]

    static func randomString(_ random: inout SplitMix) -> String {
        let pick = tricky[Int.random(in: 0..<tricky.count, using: &random)]
        let scalars = (0..<Int.random(in: 0..<12, using: &random)).map { _ in
            Character(Unicode.Scalar(UInt8.random(in: 0...127, using: &random)))
        }
        return pick + String(scalars)
    }

    static func randomEvent(_ random: inout SplitMix) -> ProposedEvent {
        func text() -> String { randomString(&random) }
        func optionalText() -> String? { Bool.random(using: &random) ? text() : nil }
        let role = Actor.Role.allCases[Int.random(in: 0..<Actor.Role.allCases.count, using: &random)]
        let payloads: [EventPayload] = [
            .ticketOpened(TicketOpened(title: text(), brand: text(), creator: text())),
            .agentAssigned(AgentAssigned(agent: text())),
            .agentUnassigned(AgentUnassigned(agent: text())),
            .memberJoined(MemberJoined(user: text(), role: role)),
            .memberLeft(MemberLeft(user: text())),
            .messagePosted(
                MessagePosted(
                    messageID: text(), text: text(),
                    attachments: (0..<Int.random(in: 0...2, using: &random)).map { _ in
                        MessagePosted.Attachment(kind: text(), url: text(), title: optionalText())
                    })),
            .messageEdited(MessageEdited(messageID: text(), text: text())),
            .messageDeleted(MessageDeleted(messageID: text())),
            .statusChanged(StatusChanged(from: text(), to: text(), note: optionalText())),
            .deliverablePushed(
                DeliverablePushed(deliverableID: text(), title: text(), url: text(), kind: text(), note: optionalText())
            ),
        ]
        let origin: Origin =
            Bool.random(using: &random) ? .local : .streamChat(webhookID: optionalText(), messageID: optionalText())
        return ProposedEvent(
            id: UUID(), actor: Actor(id: text(), role: role),
            occurredAt: Timestamp(
                microsecondsSinceEpoch: Int64.random(in: -5_000_000...4_000_000_000_000_000, using: &random)),
            origin: origin, correlationID: Bool.random(using: &random) ? UUID() : nil,
            causationID: Bool.random(using: &random) ? UUID() : nil,
            payload: payloads[Int.random(in: 0..<payloads.count, using: &random)])
    }

    @Test(
        arguments: [0, 1, -1, 9, 10, -10, 99, 100, 1_795_000_000_000_000, Int64.max, Int64.min, Int64.max - 1]
            as [Int64])
    func integersAreWrittenAsSwiftPrintsThem(_ value: Int64) {
        var writer = CanonicalWriter()
        writer.integer(value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == String(value))
    }

    @Test func generatedEventsEncodeToJSONEncodersBytes() throws {
        var random = SplitMix(seed: 7)
        for _ in 0..<3_000 {
            let body = EventBody(
                Self.randomEvent(&random), stream: .test(Int.random(in: 1...99, using: &random)),
                recordedAt: Timestamp(microsecondsSinceEpoch: Int64.random(in: 0...Int64.max / 2, using: &random)))
            let fast = try #require(CanonicalWriter.encode(body))
            let reference = try CanonicalJSON.encode(body)
            #expect(fast == reference, "\(String(decoding: reference, as: UTF8.self))")
            if fast != reference { return }
        }
    }

    @Test func theSyntheticDeskEncodesToJSONEncodersBytes() throws {
        for item in SyntheticDesk(.init(tickets: 30, seed: 3, meanMessagesPerTicket: 20)).events() {
            let body = EventBody(item.event, stream: item.stream, recordedAt: .now)
            #expect(CanonicalWriter.encode(body) == (try CanonicalJSON.encode(body)))
        }
    }

    @Test func unknownPayloadsAreLeftToJSONEncoder() {
        let event = ProposedEvent(
            actor: Actor(id: "a", role: .system),
            payload: .unknown(type: EventType(rawValue: "future.thing"), payload: .object(["x": .integer(1)])))
        #expect(CanonicalWriter.encode(EventBody(event, stream: .test(1), recordedAt: .now)) == nil)
    }
}

/// A timestamp's ISO 8601 text is spelled by arithmetic: the same text Foundation's formatter
/// makes, on every kind of day.
@Suite(.timeLimit(.minutes(1))) struct TimestampTextTests {
    @Test func isFoundationsISO8601WithMicroseconds() {
        var random = SystemRandomNumberGenerator()
        let day: Int64 = 86_400_000_000
        let edges: [Int64] = [
            0, -1, 1, day - 1, day, -day, 951_782_400_000_000,  // 2000-02-29
            4_107_542_400_000_000,  // 2100-03-01
            -62_135_596_800_000_000,  // 0001-01-01 (Julian in Foundation)
            -12_219_292_800_000_000,  // 1582-10-15, the first Gregorian day
            -11_676_096_000_000_001,  // 1582-12-31T23:59:59.999999
            253_402_300_799_999_999,  // 9999-12-31T23:59:59.999999
        ]
        let spread = (0..<5_000).map { _ in
            Int64.random(in: -2_208_988_800_000_000...7_258_118_400_000_000, using: &random)
        }
        for microseconds in edges + spread {
            let time = Timestamp(microsecondsSinceEpoch: microseconds)
            #expect(time.description == time.foundationDescription, "\(microseconds)")
            #expect(Timestamp(iso8601: time.description) == time, "round trip of \(time)")
        }
        #expect(Timestamp(microsecondsSinceEpoch: 951_782_400_123_456).description == "2000-02-29T00:00:00.123456Z")
    }
}
