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
    }
}
