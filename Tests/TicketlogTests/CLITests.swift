import Foundation
import Testing

@testable import Ticketlog

/// The `ticketlog` executable, run end to end as a user would.
@Suite(.timeLimit(.minutes(3))) struct CLITests {
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
        for word in [
            "hash chain", "edited", "missing", "reordered", "undecodable", "Exit status", "--database", "--json",
        ] {
            #expect(help.stdout.contains(word), "verify --help should mention \(word)")
        }
    }

    @Test(arguments: [
        ["--cache-mib", "0"], ["--reader-cache-mib", "0"], ["--reader-cache-mib", "2048"], ["--malloc-arenas", "-1"],
        ["--rate-burst", "0"],
        // A rate so small its wait overflowed an Int and crashed the server on the first 429.
        ["--rate-limit", "1e-30"], ["--rate-limit", "nan"], ["--rate-limit", "-1"], ["--rate-limit", "1e300"],
        ["--anonymous-rate-limit", "1e-30"], ["--anonymous-rate-burst", "0"], ["--max-connections", "0"],
        ["--request-head-timeout", "0"], ["--idle-timeout", "inf"], ["--feeds-per-caller", "0"],
        ["--feeds-total", "1e9"],
    ])
    func serveRefusesMemoryAndLimitOptionsOutOfRangeBeforeOpeningTheLog(_ option: [String]) throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("never.sqlite")
        let result = try runProcess(Self.executable, ["serve", "--database", path] + option)
        #expect(result.status == 64, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains(option[0]), "the error names the option: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func verifyWithProjectionsComparesThemWithARebuild() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("projections.sqlite")
        #expect(try Self.run("demo", "--database", path, "--durability", "normal").status == 0)
        let ok = try Self.run("verify", "--database", path, "--projections")
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("projection table messages: OK"), "\(ok.stdout)")

        try sqlite3(path, "UPDATE ticket_summaries SET status = 'closed'")
        let differs = try Self.run("verify", "--database", path, "--projections")
        #expect(differs.status == 1)
        #expect(differs.stdout.hasPrefix("OK: 14 events"), "the events themselves are intact")
        #expect(differs.stdout.contains("PROJECTION DIFFERS: ticket_summaries"), "\(differs.stdout)")
        #expect(differs.stdout.contains("projection table messages: OK"))

        let json = try Self.run("verify", "--database", path, "--projections", "--json")
        #expect(json.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["ok"] as? Bool == true)
        let tables = (object?["projections"] as? [String: Any])?["tables"] as? [[String: Any]] ?? []
        #expect(tables.first { $0["name"] as? String == "ticket_summaries" }?["matches"] as? Bool == false)
        #expect(tables.first { $0["name"] as? String == "messages" }?["matches"] as? Bool == true)
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

        try sqlite3(
            path,
            """
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

        let backwards = try Self.run(
            "read", "--database", path, "--stream", "ticket-1001", "--backwards", "--limit", "2")
        #expect(
            backwards.stdout.split(separator: "\n").compactMap {
                try? JSONDecoder().decode(RecordedEvent.self, from: Data($0.utf8)).version
            } == [14, 13])

        let invalid = try Self.run("read", "--database", path, "--stream", "ticket/../1")
        #expect(invalid.status != 0)
        #expect(invalid.stderr.contains("is not a stream id"))
    }
}

@Suite(.timeLimit(.minutes(3))) struct ProjectionCLITests {
    static func demoLog() throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let path = directory.path("demo.sqlite")
        let demo = try CLITests.run("demo", "--database", path, "--durability", "normal")
        #expect(demo.status == 0, "\(demo.stderr)")
        return (directory, path)
    }

    @Test func auditPrintsAReadableTrailAndFilters() throws {
        let (directory, path) = try Self.demoLog()
        defer { withExtendedLifetime(directory) {} }
        let all = try CLITests.run("audit", "--database", path, "--ticket", "1001")
        #expect(all.status == 0)
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.count == 14)
        #expect(
            lines[8]
                == #"#9  2026-11-18T11:14:40.000000Z  ticket-1001  local  kim (creator) edited message m-3 to "Friday works, draft on Wednesday.""#
        )

        let filtered = try CLITests.run(
            "audit", "--database", path, "--actor", "sam", "--type", "status.changed", "--from", "2026-11-18T11:16:00Z",
            "--format", "ndjson")
        let objects = try filtered.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.map { $0["position"] as? Int } == [13])
        #expect(
            objects.first?["summary"] as? String
                == "sam (agent) changed the status from in_progress to resolved with the note \"approved by brand\"")

        let window = try CLITests.run(
            "audit", "--database", path, "--from", "2026-11-18T11:08:40Z", "--to", "2026-11-18T11:10:40Z")
        #expect(window.stdout.split(separator: "\n").map { $0.prefix(3) } == ["#3 ", "#4 "])

        let bad = try CLITests.run("audit", "--database", path, "--from", "last tuesday")
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--from 'last tuesday' is not a time"))
    }

    @Test func replayShowsTheTicketAtAPositionOrTime() throws {
        let (directory, path) = try Self.demoLog()
        defer { withExtendedLifetime(directory) {} }
        let atNine = try CLITests.run("replay", "--database", path, "--ticket", "1001", "--at", "9", "--json")
        #expect(atNine.status == 0, "\(atNine.stderr)")
        let state = try #require(try JSONSerialization.jsonObject(with: Data(atNine.stdout.utf8)) as? [String: Any])
        #expect(state["position"] as? Int == 9)
        #expect(state["status"] as? String == "open")
        #expect((state["members"] as? [[String: Any]])?.compactMap { $0["user"] as? String } == ["acme", "kim", "sam"])
        let messages = try #require(state["messages"] as? [[String: Any]])
        #expect(messages.last?["text"] as? String == "Friday works, draft on Wednesday.")

        let now = try CLITests.run("replay", "--database", path, "--ticket", "ticket-1001")
        #expect(now.stdout.contains("status:   resolved"))
        #expect(now.stdout.contains("members:  acme (brand), kim (creator)"))
        // Only the last messages, when asked: the earlier ones counted.
        // A message line: its position, then its time (a deliverable's has no time).
        func messageLines(_ output: String) -> [Substring] {
            output.split(separator: "\n").filter { line in
                let words = line.split(separator: " ")
                return line.hasPrefix("    #") && words.count > 1 && words[1].contains("T") && words[1].hasSuffix("Z")
            }
        }
        let listed = messageLines(now.stdout)
        #expect(listed.count >= 2)
        let lastOne = try CLITests.run("replay", "--database", path, "--ticket", "1001", "--messages", "1")
        #expect(lastOne.status == 0, "\(lastOne.stderr)")
        #expect(messageLines(lastOne.stdout) == [listed.last!])
        #expect(lastOne.stdout.contains("(\(listed.count - 1) earlier message(s) not shown)"))
        let json = try CLITests.run("replay", "--database", path, "--ticket", "1001", "--messages", "0", "--json")
        let trimmed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((trimmed["messages"] as? [Any])?.isEmpty == true)
        #expect(trimmed["messagesOmitted"] as? Int == listed.count)
        #expect(try CLITests.run("replay", "--database", path, "--ticket", "1001", "--messages", "-1").status != 0)

        let before = try CLITests.run("replay", "--database", path, "--ticket", "1001", "--at", "2001-01-01")
        #expect(before.stdout == "ticket-1001 has no events at 2001-01-01\n")
    }

    @Test func rebuildRebuildsAndRefusesUnknownNames() throws {
        let (directory, path) = try Self.demoLog()
        defer { withExtendedLifetime(directory) {} }
        let before = try sqlite3(path, "SELECT * FROM messages ORDER BY position")
        try sqlite3(path, "DELETE FROM messages; UPDATE ticket_summaries SET status = 'bogus';")
        let rebuild = try CLITests.run("rebuild", "--database", path)
        #expect(rebuild.status == 0, "\(rebuild.stderr)")
        #expect(
            rebuild.stdout.hasPrefix("rebuilt ticket_summary, membership, message_history from 14 events"))
        #expect(try sqlite3(path, "SELECT * FROM messages ORDER BY position") == before)
        #expect(try sqlite3(path, "SELECT status FROM ticket_summaries") == "resolved\n")

        let unknown = try CLITests.run("rebuild", "--database", path, "--projection", "nope")
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no projection named 'nope'"))
    }
}

@Suite(.timeLimit(.minutes(10))) struct ExchangeCLITests {
    static let generator: URL = CLITests.executable.deletingLastPathComponent().appendingPathComponent(
        "ticketlog-generate")

    @Test func generateImportStatsExport() throws {
        let directory = try TemporaryDirectory()
        let desk = directory.path("desk.ndjson")
        let log = directory.path("log.sqlite")
        let generated = try runProcess(
            Self.generator, ["--tickets", "25", "--messages", "20", "--seed", "7", "--out", desk])
        #expect(generated.status == 0, "\(generated.stderr)")
        #expect(generated.stderr.hasSuffix("over 25 tickets (seed 7)\n"))
        let events = try String(contentsOfFile: desk, encoding: .utf8).split(separator: "\n").count
        let again = try runProcess(
            Self.generator, ["--tickets", "25", "--messages", "20", "--seed", "7", "--out", "-"])
        #expect(
            again.stdout == (try String(contentsOfFile: desk, encoding: .utf8)), "the same seed gives the same bytes")

        let imported = try CLITests.run("import", "--database", log, desk)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout == "imported \(events) events: \(events) appended, 0 already in the log\n")
        let twice = try CLITests.run("import", "--database", log, desk)
        #expect(twice.stdout == "imported \(events) events: 0 appended, \(events) already in the log\n")

        let stats = try CLITests.run("stats", "--database", log, "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect(object["events"] as? Int == events)
        #expect(object["tickets"] as? Int == 25)
        let text = try CLITests.run("stats", "--database", log)
        #expect(text.stdout.contains("message.posted"))
        #expect(text.stdout.contains("B/event"))

        let export = try CLITests.run("export", "--database", log, "--format", "csv", "--out", directory.path("csv"))
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.hasPrefix("exported \(events) events of 25 tickets"))
        let csv = try String(contentsOfFile: directory.path("csv/ticket_facts.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("stream,ticket_id,title,"))
        #expect(csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 26)

        let refused = try CLITests.run("export", "--database", log, "--format", "csv", "--out", directory.path("csv"))
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("exists"))
    }

    @Test func aBadImportLineIsOneClearErrorAndNothingIsImported() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("bad.ndjson")
        let log = directory.path("log.sqlite")
        try """
        {"actor":{"id":"kim","role":"creator"},"id":"00000000-0000-4000-8000-000000000001","occurredAt":1,"origin":{"kind":"local"},"payload":{"messageId":"m-1","text":"hi"},"stream":"ticket-1","type":"message.posted"}
        {"actor":{"id":"kim","role":"wizard"},"id":"00000000-0000-4000-8000-000000000002","occurredAt":2,"origin":{"kind":"local"},"payload":{"messageId":"m-2","text":"hi"},"stream":"ticket-1","type":"message.posted"}

        """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try CLITests.run("import", "--database", log, file)
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("ticketlog: \(file), line 2: actor.role is invalid"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(try sqlite3(log, "SELECT count(*) FROM events") == "0\n")
    }
}
