import Foundation
import Testing

@testable import Ticketlog

/// The sample log in `Fixtures/sample`, written by an earlier build: this build must read and
/// verify it, and checking it must not change a byte.
@Suite(.timeLimit(.minutes(3))) struct SampleLogTests {
    static let sample = fixturesDirectory.appendingPathComponent("sample")

    static func copy() throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let path = directory.path("desk.sqlite")
        try FileManager.default.copyItem(atPath: sample.appendingPathComponent("desk.sqlite").path, toPath: path)
        return (directory, path)
    }

    @Test func verifiesReadOnlyToThePinnedHeadWithoutChangingTheFile() async throws {
        let (directory, path) = try Self.copy()
        defer { withExtendedLifetime(directory) {} }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        let store = try EventStore(path: path, configuration: configuration)
        let report = try await store.verify()
        #expect(report.isValid)
        #expect(report.eventsVerified == 387)
        let pinned = try String(contentsOf: Self.sample.appendingPathComponent("head-hash.txt"), encoding: .utf8)
        #expect(report.headHash == pinned.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))

        let append = await #expect(throws: EventStoreError.self) {
            var factory = EventFactory()
            try await store.append(factory.message(), to: .test(1))
        }
        #expect(append?.code == .storageFailure)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func holdsExactlyTheEventsOfItsSourceFile() async throws {
        let (directory, path) = try Self.copy()
        defer { withExtendedLifetime(directory) {} }
        let source = try String(contentsOf: Self.sample.appendingPathComponent("desk.ndjson"), encoding: .utf8)
        let lines = try source.split(separator: "\n").map { try EventLine(json: Array($0.utf8)) }
        let store = try EventStore(path: path)
        let stored = try await store.readAll(limit: 10_000)
        #expect(stored.map(\.proposed) == lines.map(\.event))
        #expect(stored.map(\.stream) == lines.map(\.stream))
    }

    @Test func itsProjectionsAreWhatARebuildGives() async throws {
        let (directory, path) = try Self.copy()
        defer { withExtendedLifetime(directory) {} }
        let store = try EventStore(path: path)
        let stored = try await ProjectionTests.dump(store)
        try await store.rebuildProjections()
        #expect(try await ProjectionTests.dump(store) == stored)
        #expect(try await store.tickets().count == 12)
    }

    @Test func theReadOnlyCommandsLeaveItUntouched() throws {
        let (directory, path) = try Self.copy()
        defer { withExtendedLifetime(directory) {} }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try CLITests.run("verify", "--database", path).status == 0)
        #expect(try CLITests.run("stats", "--database", path).stdout.contains("events:            387"))
        #expect(try CLITests.run("read", "--database", path, "--limit", "3").stdout.split(separator: "\n").count == 3)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }
}

extension SampleLogTests {
    /// Every command of the CLI, run on (a copy of) the sample log.
    @Test func everyCommandWorksOnTheSampleLog() throws {
        let (directory, path) = try Self.copy()
        defer { withExtendedLifetime(directory) {} }
        let ticket = try sqlite3(path, "SELECT name FROM streams ORDER BY key LIMIT 1")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let message = try sqlite3(
            path,
            "SELECT message_id FROM messages m JOIN streams s ON s.key = m.stream WHERE s.name = '\(ticket)' ORDER BY position LIMIT 1 OFFSET 3"
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!ticket.isEmpty && !message.isEmpty)
        let commands: [[String]] = [
            ["verify"], ["stats"], ["read", "--stream", ticket, "--limit", "5"],
            ["audit", "--ticket", ticket], ["audit", "--type", "deliverable.pushed", "--format", "ndjson"],
            ["replay", "--ticket", ticket, "--at", "200"], ["replay", "--ticket", ticket, "--message", message],
            ["rebuild"], ["rebuild", "--projection", "audit_trail"],
            ["export", "--format", "csv", "--out", directory.path("csv")],
            ["export", "--format", "ndjson", "--out", directory.path("nd")],
            ["export", "--format", "sqlite", "--out", directory.path("e.sqlite")],
            ["import", Self.sample.appendingPathComponent("desk.ndjson").path],
            ["rotate-dictionary"], ["verify", "--json"],
        ]
        for command in commands {
            let result = try runProcess(CLITests.executable, command + ["--database", path])
            #expect(result.status == 0, "ticketlog \(command.joined(separator: " ")): \(result.stderr)")
            #expect(!result.stdout.isEmpty, "ticketlog \(command.joined(separator: " ")) printed nothing")
        }
        let visible = try runProcess(
            CLITests.executable, ["replay", "--ticket", ticket, "--message", message, "--database", path])
        #expect(visible.stdout.hasPrefix("\(message) in \(ticket) was visible to: "))
        let imported = try runProcess(
            CLITests.executable, ["import", Self.sample.appendingPathComponent("desk.ndjson").path, "--database", path])
        #expect(imported.stdout == "imported 387 events: 0 appended, 387 already in the log\n")
    }
}
