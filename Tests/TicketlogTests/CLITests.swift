import Foundation
import Testing

@testable import Ticketlog

/// The `ticketlog` executable, run end to end as a user would.
@Suite struct CLITests {
    static let executable: URL = {
        // Tests run from the build directory that also holds the `ticketlog` product.
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [directory, directory.deletingLastPathComponent()]
            .map { $0.appendingPathComponent("ticketlog") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }()

    static func run(_ arguments: String...) throws -> ProcessOutput {
        try runProcess(executable, arguments)
    }

    @Test func verifyHelpDocumentsTheCommand() throws {
        let help = try Self.run("verify", "--help")
        #expect(help.status == 0)
        for word in ["hash chain", "edited", "missing", "reordered", "undecodable", "Exit status", "--database", "--json"] {
            #expect(help.stdout.contains(word), "verify --help should mention \(word)")
        }
    }

    @Test func demoThenVerifyThenTamperThenVerify() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("demo.sqlite")

        let demo = try Self.run("demo", "--database", path, "--durability", "normal")
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stdout.contains("appended positions 1...14"))
        let again = try Self.run("demo", "--database", path)
        #expect(again.stdout.contains("already in the log at positions 1...14"))

        let ok = try Self.run("verify", "--database", path)
        #expect(ok.status == 0)
        #expect(ok.stdout.hasPrefix("OK: 14 events, head position 14"))
        #expect(ok.stderr.isEmpty, "progress stays off when stderr is not a terminal")

        try sqlite3(path, """
            DROP TRIGGER events_are_immutable_update;
            UPDATE events SET body = CAST(replace(CAST(body AS TEXT), 'Approved', 'Rejected') AS BLOB) WHERE position = 12;
            """)
        let failed = try Self.run("verify", "--database", path)
        #expect(failed.status == 1)
        #expect(failed.stdout.hasPrefix("FAILED at position 12: edited:"))
        #expect(failed.stderr.contains("warning: trigger events_are_immutable_update is missing"))

        let json = try Self.run("verify", "--database", path, "--json")
        #expect(json.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["ok"] as? Bool == false)
        #expect((object?["failure"] as? [String: Any])?["kind"] as? String == "edited")
        #expect((object?["failure"] as? [String: Any])?["position"] as? Int == 12)
    }

    @Test func verifyOfAMissingOrForeignFileIsAOneLineErrorWithStatus2() throws {
        let directory = try TemporaryDirectory()
        let missing = try Self.run("verify", "--database", directory.path("absent.sqlite"))
        #expect(missing.status == 2)
        #expect(missing.stderr.hasPrefix("ticketlog: no log at"))
        #expect(missing.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: directory.path("absent.sqlite")))

        let foreign = directory.path("foreign.sqlite")
        try sqlite3(foreign, "CREATE TABLE t(x);")
        let refused = try Self.run("verify", "--database", foreign)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("not a ticketlog log"))
    }

    @Test func readPrintsNDJSONThatDecodesBackToTheEvents() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("demo.sqlite")
        #expect(try Self.run("demo", "--database", path, "--durability", "normal").status == 0)

        let read = try Self.run("read", "--database", path, "--stream", "ticket-1001", "--from", "3", "--limit", "4")
        #expect(read.status == 0, "\(read.stderr)")
        let lines = read.stdout.split(separator: "\n")
        #expect(lines.count == 4)
        let decoded = try lines.map { try JSONDecoder().decode(RecordedEvent.self, from: Data($0.utf8)) }
        #expect(decoded.map(\.version) == [3, 4, 5, 6])
        let stored = try await EventStore(path: path).readStream(.ticket("1001")!, from: 3, limit: 4)
        #expect(decoded == stored)

        let backwards = try Self.run("read", "--database", path, "--stream", "ticket-1001", "--backwards", "--limit", "2")
        #expect(backwards.stdout.split(separator: "\n").compactMap {
            try? JSONDecoder().decode(RecordedEvent.self, from: Data($0.utf8)).version
        } == [14, 13])

        let invalid = try Self.run("read", "--database", path, "--stream", "ticket/../1")
        #expect(invalid.status != 0)
        #expect(invalid.stderr.contains("is not a stream id"))
    }
}
