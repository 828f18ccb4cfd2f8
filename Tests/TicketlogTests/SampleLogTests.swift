import Foundation
import Testing

@testable import Ticketlog

/// The sample log in `Fixtures/sample`, written by an earlier build: this build must read and
/// verify it, and checking it must not change a byte. `desk-format1.sqlite` is the same log as
/// a format-1 build wrote it: refused with the way out, and migrated to the same chain.
@Suite(.timeLimit(.minutes(3))) struct SampleLogTests {
    static let sample = fixturesDirectory.appendingPathComponent("sample")

    static func copy(_ name: String = "desk.sqlite") throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let path = directory.path("desk.sqlite")
        try FileManager.default.copyItem(atPath: sample.appendingPathComponent(name).path, toPath: path)
        return (directory, path)
    }

    static var pinnedHead: String {
        get throws {
            try String(contentsOf: sample.appendingPathComponent("head-hash.txt"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func aFormat1LogIsRefusedWithTheWayOutAndNotChanged() throws {
        let (directory, path) = try Self.copy("desk-format1.sqlite")
        defer { withExtendedLifetime(directory) {} }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for readOnly in [false, true] {
            var configuration = EventStore.Configuration()
            configuration.readOnly = readOnly
            let error = #expect(throws: EventStoreError.self) {
                try EventStore(path: path, configuration: configuration)
            }
            #expect(error?.code == .unknownFormat)
            #expect(error?.message.contains("uses ticketlog format 1") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("ticketlog migrate --database \(path)") == true)
        }
        let verify = try CLITests.run("verify", "--database", path)
        #expect(verify.status == 2)
        #expect(verify.stderr.contains("ticketlog migrate"), "\(verify.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func migratingTheFormat1LogKeepsEveryEventAndTheChain() async throws {
        let (directory, path) = try Self.copy("desk-format1.sqlite")
        defer { withExtendedLifetime(directory) {} }
        let migrate = try CLITests.run("migrate", "--database", path)
        #expect(migrate.status == 0, "\(migrate.stderr)")
        #expect(migrate.stdout.contains("migrated 387 events from format 1 to 2"), "\(migrate.stdout)")
        #expect(migrate.stdout.contains("head hash \(try Self.pinnedHead) (unchanged)"))
        #expect(
            try sqlite3(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('audit_trail', 'events_format1')")
                == "0\n")

        let store = try EventStore(path: path)
        let report = try await store.verify()
        #expect(report.isValid)
        #expect(report.headHash == (try Self.pinnedHead))
        // The same events, byte for byte, as the format-2 sample (made by this migration) and the
        // file they were imported from.
        let (sampleDirectory, samplePath) = try Self.copy()
        defer { withExtendedLifetime(sampleDirectory) {} }
        let sample = try EventStore(path: samplePath)
        #expect(try await store.readAll(limit: 1_000) == (try await sample.readAll(limit: 1_000)))
        #expect(try await ProjectionTests.dump(store) == (try await ProjectionTests.dump(sample)))
        #expect(try await store.checkProjections().holds)

        let again = try CLITests.run("migrate", "--database", path)
        #expect(again.status == 0)
        #expect(again.stdout.contains("already format 2: nothing to do"))
    }

    @Test func aFormat1LogWhoseChainIsBrokenIsNotMigrated() throws {
        let (directory, path) = try Self.copy("desk-format1.sqlite")
        defer { withExtendedLifetime(directory) {} }
        try sqlite3(
            path,
            """
            DROP TRIGGER events_are_immutable_update;
            UPDATE events SET hash = zeroblob(32) WHERE position = 200;
            """)
        let migrate = try CLITests.run("migrate", "--database", path)
        #expect(migrate.status == 1)
        #expect(migrate.stderr.contains("position 200 does not match its chain hash"), "\(migrate.stderr)")
        #expect(migrate.stderr.contains("Nothing was migrated"))
        #expect(try sqlite3(path, "SELECT value FROM meta WHERE key = 'format_version'") == "1\n")
        #expect(try sqlite3(path, "SELECT count(*) FROM events") == "387\n")
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
        #expect(report.headHash == (try Self.pinnedHead))
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
            ["rebuild"], ["rebuild", "--projection", "message_history"],
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
