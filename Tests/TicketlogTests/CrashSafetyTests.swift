import Foundation
import Testing

@testable import Ticketlog

/// Crash safety (issue 7): `ticketlog-crashtest` kills a FULL-durability writer with SIGKILL and
/// checks the log after each restart; here its short form, and proof that its checks can fail.
@Suite(.timeLimit(.minutes(10))) struct CrashSafetyTests {
    static let executable = CLITests.executable.deletingLastPathComponent().appendingPathComponent(
        "ticketlog-crashtest")

    @Test func aWriterKilledFiveTimesLosesNothingItAcknowledged() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("crash.sqlite")
        let run = try await awaitProcess(Self.executable, ["run", "--database", path, "--kills", "5", "--seed", "3"])
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let kills = run.stdout.split(separator: "\n").filter { $0.hasPrefix("kill ") }
        #expect(kills.count == 5, "\(run.stdout)")
        #expect(kills.allSatisfy { $0.contains("verify OK") && $0.contains("projections equal a rebuild") })
        #expect(run.stdout.contains("survived 5 kills"))
        let acknowledged = try String(contentsOfFile: path + ".acks", encoding: .utf8).split(separator: "\n")
        #expect(acknowledged.count > 20, "the writer must have got appends through between kills")

        // The same checks, run again by `check`, hold on the log as the last restart left it…
        let recheck = try await awaitProcess(Self.executable, ["check", "--database", path, "--seed", "3"])
        #expect(recheck.status == 0, "\(recheck.stdout)\n\(recheck.stderr)")
        #expect(recheck.stdout.hasPrefix("OK: "))

        // …and fail on each kind of loss. An acknowledgement the log does not bear out:
        let moved = directory.path("moved.sqlite")
        try sqlite3(path, "VACUUM INTO '\(moved)'")
        let shifted = acknowledged.map { line -> String in
            let fields = line.split(separator: " ").compactMap { Int64($0) }
            return "\(fields[0]) \(fields[1] + 1) \(fields[2] + 1)"
        }
        try (shifted.joined(separator: "\n") + "\n").write(toFile: moved + ".acks", atomically: true, encoding: .utf8)
        let misplaced = try await awaitProcess(Self.executable, ["check", "--database", moved, "--seed", "3"])
        #expect(misplaced.status == 1)
        #expect(misplaced.stdout.contains("not where they were acknowledged"), "\(misplaced.stdout)")

        // A projection row that no event explains. Every ticket has a summary from its first
        // event on; a slow machine's short run may not have reached the first message, so not
        // `messages`.
        let forged = directory.path("forged.sqlite")
        try sqlite3(path, "VACUUM INTO '\(forged)'")
        try FileManager.default.copyItem(atPath: path + ".acks", toPath: forged + ".acks")
        let changed = try sqlite3(
            forged,
            "UPDATE ticket_summaries SET status = 'forged' WHERE stream = (SELECT min(stream) FROM ticket_summaries); SELECT changes();"
        )
        #expect(changed.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        let projection = try await awaitProcess(Self.executable, ["check", "--database", forged, "--seed", "3"])
        #expect(projection.status == 1)
        #expect(projection.stdout.contains("differing from a rebuild: ticket_summaries"), "\(projection.stdout)")

        // An acknowledged event removed from the log:
        let removed = directory.path("removed.sqlite")
        try sqlite3(path, "VACUUM INTO '\(removed)'")
        try FileManager.default.copyItem(atPath: path + ".acks", toPath: removed + ".acks")
        let position = try #require(acknowledged.last?.split(separator: " ").dropFirst().first)
        try sqlite3(
            removed, "DROP TRIGGER events_are_immutable_delete; DELETE FROM events WHERE position = \(position)")
        let missing = try await awaitProcess(Self.executable, ["check", "--database", removed, "--seed", "3"])
        #expect(missing.status == 1)
        #expect(missing.stdout.contains("FAILED: verify failed at position"), "\(missing.stdout)")
    }

    @Test func theProjectionCheckFindsARowNoEventExplains() async throws {
        let (store, directory) = try await StoreKind.file.make()
        defer { withExtendedLifetime(directory) {} }
        var generator = RandomConversations(seed: 11)
        try await ProjectionTests.append(generator.events(streams: 3, count: 120), to: store, seed: 11)
        let clean = try await store.checkProjections()
        #expect(clean.holds)
        #expect(clean.headPosition == 120)
        #expect(
            clean.tables.map(\.name).sorted() == EventStore.projections.flatMap { $0.readableTables(.sqlite) }.sorted())
        #expect(clean.tables.allSatisfy { $0.rows == $0.rebuiltRows })

        try await store.writer.write { db in
            try db.execute(
                sql: "DELETE FROM ticket_summaries WHERE stream = (SELECT max(stream) FROM ticket_summaries)")
        }
        let check = try await store.checkProjections()
        #expect(!check.holds)
        let summaries = try #require(check.tables.first { $0.name == "ticket_summaries" })
        #expect(!summaries.matches)
        #expect(summaries.rows == summaries.rebuiltRows - 1)
        #expect(check.tables.filter { !$0.matches }.map(\.name) == ["ticket_summaries"])
        // The check works on a copy: the log's own projection is as it was.
        #expect(
            try await store.checkProjections().tables.first { $0.name == "ticket_summaries" }?.rows == summaries.rows)
    }
}
