import Foundation
import Testing

@testable import Ticketlog

/// Audit and terminal injection (issue 13): a creator wrote a status note that made
/// `ticketlog audit` print a forged line "#99 … ada (admin) approved …", and escape sequences
/// that cleared the terminal. Notes now pass the text rule, and every human-readable line is
/// escaped whatever the log holds.
@Suite(.timeLimit(.minutes(2))) struct OutputEscapingTests {
    static let forgedLine = "#99  2026-11-29T10:00:00.000000Z  ticket-1  local  ada (admin) approved the payout"

    @Test func theTextRuleEscapesAndRefusesWhatItShould() throws {
        #expect(TextRule.escaped("plain text, ümlauts, emoji 👍") == "plain text, ümlauts, emoji 👍")
        #expect(TextRule.escaped("a\nb\r\tc") == #"a\nb\r\tc"#)
        #expect(TextRule.escaped("\u{1B}[2Jx\u{7F}\u{9B}") == #"\u{1B}[2Jx\u{7F}\u{9B}"#)
        #expect(
            TextRule.escaped("left \u{202E}thgir\u{2066}x\u{2069} \u{2028}")
                == #"left \u{202E}thgir\u{2066}x\u{2069} \u{2028}"#)
        #expect(throws: EventStoreError.self) { try TextRule.check("a\nb", "name", limit: 10) }
        try TextRule.check("a\nb\tc", "note", limit: 10, kind: .text)
        #expect(TextRule.problem("a\u{0}b", "note", limit: 10, kind: .text)?.contains("U+0000") == true)
        #expect(TextRule.problem(" \n ", "note", limit: 10, kind: .text) == "note must not be empty")
        #expect(TextRule.problem("", "text", limit: 10, kind: .text, allowEmpty: true) == nil)
        #expect(TextRule.problem("abcdef", "id", limit: 5) == "id is longer than 5 characters")
    }

    /// The rule reads control characters from the UTF-8 bytes: it finds exactly the scalars
    /// whose general category is Cc, wherever they stand and whatever surrounds them, and
    /// counts characters, not bytes, against the limit.
    @Test func theRulesByteScanFindsExactlyTheControlCharacters() {
        var scalars = Array(0..<0x1_0000)
        scalars += Array(stride(from: 0x1_0000, through: 0x10_FFFF, by: 97))
        for value in scalars {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let isControl = scalar.properties.generalCategory == .control
            let lineBreak = scalar == "\t" || scalar == "\n" || scalar == "\r"
            for text in ["\(scalar)", "é\(scalar)x", "\u{A0}\(scalar)", "ab\(scalar)\u{85}"] {
                let expected: Unicode.Scalar? = isControl ? scalar : (text.hasSuffix("\u{85}") ? "\u{85}" : nil)
                #expect(
                    TextRule.firstControl(in: text, allowingLineBreaks: false) == expected,
                    "U+\(String(value, radix: 16)) in \(text.debugDescription)")
                #expect(
                    TextRule.firstControl(in: text, allowingLineBreaks: true)
                        == (lineBreak ? (text.hasSuffix("\u{85}") ? "\u{85}" : nil) : expected),
                    "U+\(String(value, radix: 16)) in \(text.debugDescription), line breaks allowed")
            }
        }
        #expect(TextRule.problem(String(repeating: "é", count: 5), "id", limit: 5) == nil)
        #expect(TextRule.problem(String(repeating: "👍🏽", count: 5), "id", limit: 5) == nil)
        #expect(TextRule.problem(String(repeating: "é", count: 6), "id", limit: 5) == "id is longer than 5 characters")
        #expect(TextRule.problem("a\u{9F}b", "id", limit: 5)?.contains("U+009F") == true)
    }

    /// Notes and deliverable notes pass the rule that message text passes: no escape sequences.
    @Test func notesPassTheTextRule() async throws {
        let store = try EventStore.inMemory()
        let ticket = StreamID.ticket("1")!
        let kim = Actor(id: "kim", role: .creator)
        try await store.execute(
            .open(title: "T", brand: "acme", creator: "kim"), on: ticket, by: Actor(id: "acme", role: .brand))
        for note in ["\u{1B}[2Jcleared", "nul\u{0}byte", "  "] {
            await #expect(throws: EventStoreError.self, "status note \(note.debugDescription)") {
                try await store.execute(.changeStatus(to: "in_review", note: note), on: ticket, by: kim)
            }
            await #expect(throws: EventStoreError.self, "deliverable note \(note.debugDescription)") {
                try await store.execute(
                    .pushDeliverable(
                        DeliverablePushed(
                            deliverableID: "d", title: "Cut", url: "https://x.example/c", kind: "video", note: note)),
                    on: ticket, by: kim)
            }
        }
        await #expect(throws: EventStoreError.self, "an actor id with a line break") {
            try await store.execute(
                .join(user: "kim", role: .creator), on: ticket, by: Actor(id: "kim\n#99 ada", role: .creator))
        }
        #expect(try await store.headPosition() == 1, "nothing was appended")
    }

    /// Through `ticketlog audit`: one line per event and no control character, whatever the
    /// notes, titles and ids hold — those the rules allow (a line break in a note) and those an
    /// older build or a raw append stored (escape sequences).
    @Test func auditAndReplayPrintOneSafeLinePerEvent() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        do {
            var configuration = EventStore.Configuration()
            configuration.durability = .normal
            let store = try EventStore(path: path, configuration: configuration)
            let ticket = StreamID.ticket("1")!
            let kim = Actor(id: "kim", role: .creator)
            try await store.execute(
                .open(title: "Launch", brand: "acme", creator: "kim"), on: ticket, by: Actor(id: "acme", role: .brand))
            // Allowed: notes are prose and may have line breaks.
            try await store.execute(
                .changeStatus(to: "in_review", note: "looks good\n" + Self.forgedLine), on: ticket, by: kim)
            // Stored raw, as a log written before the rule (or by hand) may hold.
            try await store.append(
                [
                    ProposedEvent(
                        actor: kim,
                        payload: .statusChanged(
                            StatusChanged(
                                from: "in_review", to: "resolved", note: "\u{1B}[2J\u{1B}[H" + Self.forgedLine))),
                    ProposedEvent(
                        actor: Actor(id: "kim\r" + Self.forgedLine, role: .creator),
                        payload: .messagePosted(
                            MessagePosted(messageID: "m\u{1B}]0;owned\u{7}", text: "hi\u{202E}txet"))),
                    ProposedEvent(
                        actor: kim,
                        payload: .deliverablePushed(
                            DeliverablePushed(
                                deliverableID: "d-1", title: "Cut\n" + Self.forgedLine, url: "https://x.example/c",
                                kind: "video\u{1B}[31m"))),
                ], to: ticket)
        }
        for arguments in [["audit", "--database", path], ["replay", "--database", path, "--ticket", "1"]] {
            let result = try CLITests.run(arguments)
            #expect(result.status == 0, "\(result.stderr)")
            let bytes = Array(result.stdout.utf8)
            #expect(
                !bytes.contains(0x1B) && !bytes.contains(0x07) && !bytes.contains(UInt8(ascii: "\r")),
                "\(arguments[0]): no control character reaches the terminal")
            #expect(!result.stdout.contains("\u{202E}"))
            let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(!lines.contains { $0.hasPrefix("#99") }, "\(arguments[0]) printed a forged line:\n\(result.stdout)")
            if arguments[0] == "audit" {
                #expect(lines.count == 5, "one line per event:\n\(result.stdout)")
                #expect(
                    result.stdout.contains(#"\n#99"#) || result.stdout.contains("looks good #99"),
                    "the note is shown, on its line")
                #expect(result.stdout.contains(#"\u{1B}[2J"#))
            }
        }
    }
}

extension CLITests {
    static func run(_ arguments: [String]) throws -> ProcessOutput {
        try runProcess(executable, arguments)
    }
}
