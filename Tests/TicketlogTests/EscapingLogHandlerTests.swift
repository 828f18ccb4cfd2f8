import Foundation
import Logging
import Testing
import Ticketlog

@testable import ticketlog

/// The process's log handler escapes what it writes, not what it is given: metadata set on a
/// logger (every request sets some) stays as set until a line is written, then every value —
/// the handler's, its provider's, the call's — is escaped.
@Suite(.timeLimit(.minutes(1))) struct EscapingLogHandlerTests {
    static let hostile = "kim\u{1B}[2J\n2026-11-29T10:00:00+0000 critical ticketlog: verify FAILED"

    @Test func everyValueOfALineIsEscapedWhenItIsWritten() throws {
        let provider = Logger.MetadataProvider {
            ["ticketlog.request": .string(Self.hostile), "shared": "provider"]
        }
        var handler = EscapingLogHandler(label: "test", metadataProvider: provider)
        handler[metadataKey: "caller"] = .string(Self.hostile)
        handler[metadataKey: "shared"] = "handler"
        handler[metadataKey: "only-handler"] = .stringConvertible(Self.hostile)
        // Kept as set: escaping waits for a line.
        #expect(handler[metadataKey: "caller"] == .string(Self.hostile))

        let event = LogEvent(
            level: .warning, message: "refused \(Self.hostile)",
            metadata: ["shared": "call", "nested": .array([.string(Self.hostile)])], source: nil, file: #fileID,
            function: #function, line: #line)
        let written = handler.written(event)
        let metadata = try #require(written.metadata)
        #expect(!written.message.description.contains("\u{1B}") && !written.message.description.contains("\n"))
        for key in ["caller", "ticketlog.request", "only-handler"] {
            let value = try #require(metadata[key]?.description, "\(key)")
            #expect(!value.contains("\u{1B}") && !value.contains("\n"), "\(key): \(value)")
            #expect(value.contains("kim"), "\(key)")
        }
        #expect(metadata["nested"] == .array([.string(TextRule.escaped(Self.hostile))]))
        // The call's value wins over the provider's, which wins over the handler's.
        #expect(metadata["shared"] == "call")
        var withoutCall = event
        withoutCall.metadata = nil
        #expect(handler.written(withoutCall).metadata?["shared"] == "provider")

        // An error's description is metadata too, escaped like the rest.
        var failed = event
        failed.error = CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: Self.hostile])
        let message = try #require(handler.written(failed).metadata?["error.message"]?.description)
        #expect(message.contains("kim") && !message.contains("\u{1B}") && !message.contains("\n"))
    }

    /// Lines as swift-log's `StreamLogHandler` spells them (time, level, label, metadata sorted
    /// by key, source, message), each written whole while threads log at once.
    @Test func linesAreSpelledAsSwiftLogSpellsThemAndNeverInterleave() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("log-lines-\(UUID().uuidString)").path
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(descriptor >= 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = LogOutput(descriptor: descriptor)
        var handler = EscapingLogHandler(label: "ticketlog", metadataProvider: nil, output: output)
        handler[metadataKey: "zone"] = "b"
        handler[metadataKey: "caller"] = .string(Self.hostile)
        let long = String(repeating: "x", count: 20_000)
        let logging = handler
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for number in 0..<50 {
                logging.log(
                    event: LogEvent(
                        level: .info, message: "thread \(thread) line \(number) \(thread == 0 ? long : "")",
                        metadata: nil, source: "Test", file: #fileID, function: #function, line: #line))
            }
        }
        close(descriptor)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 8 * 50 + 1 && lines.last == "")
        let pattern = try Regex(
            #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} info ticketlog: caller=kim.* zone=b \[Test\] thread (\d) line (\d+) (x{20000})?$"#
        )
        var seen = Set<String>()
        for line in lines.dropLast() {
            let match = try #require(try pattern.wholeMatch(in: line), "\(line.prefix(200))")
            #expect(!line.contains("\u{1B}"))
            seen.insert("\(match.output[1].substring ?? "") \(match.output[2].substring ?? "")")
        }
        #expect(seen.count == 8 * 50)
    }
}
