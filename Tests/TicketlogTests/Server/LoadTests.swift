import Foundation
import Testing
import TicketlogPostgres

@testable import ticketlog_load

/// Mixed load (issue 7), short form: `ticketlog-load` against the `ticketlog serve` of this build
/// for a few seconds — writers, readers and event-feed subscribers at once. `make soak` runs it
/// for ten minutes on the release build.
@Suite(.timeLimit(.minutes(10))) struct LoadTests {
    static let executable = CLITests.executable.deletingLastPathComponent().appendingPathComponent("ticketlog-load")

    @Test func mixedLoadLosesNothingAndEveryRequestSucceeds() async throws {
        let directory = try TemporaryDirectory()
        let run = try await awaitProcess(
            Self.executable,
            [
                "--server", CLITests.executable.path, "--database", directory.path("load.sqlite"), "--duration", "6",
                "--writers", "4", "--readers", "2", "--subscribers", "2", "--tickets", "10", "--sample-interval", "1",
            ])
        #expect(!run.crashed)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("OK: no failed request, nothing lost"), "\(run.stdout)")
        #expect(run.stdout.contains("every subscriber got all"))
        let requests = try #require(run.stdout.firstMatch(of: /(\d+) requests in/))
        #expect(Int(requests.output.1) ?? 0 > 50, "the load must actually load the server: \(run.stdout)")
    }
}

/// Three `ticketlog serve` processes on one PostgreSQL log (issue 19), short form: writers,
/// readers and event-feed subscribers spread over them for 20 s; one node killed with SIGKILL
/// at 6 s (its clients go on with the others), the database restarted at 12 s (requests in
/// flight answered 503 with Retry-After and sent again). `make soak` runs it for 2 minutes on
/// the release build.
@Suite(.timeLimit(.minutes(10)), .disabled(if: PostgresTestServer.skipped, PostgresTestServer.skipReason))
struct ThreeNodeLoadTests {
    @Test func threeNodesLoseNothingThroughAKilledNodeAndADatabaseRestart() async throws {
        let cluster = try await PrivateCluster.start()
        defer { Task { await cluster.remove() } }
        try await PostgresTestServer.execute("CREATE DATABASE load", on: cluster.location)
        let admin = try String(contentsOfFile: cluster.directory + "/url", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(admin.hasSuffix("/postgres"))
        let url = String(admin.dropLast("postgres".count)) + "load"
        let directory = try TemporaryDirectory()
        let run = try await awaitProcess(
            LoadTests.executable,
            [
                "--server", CLITests.executable.path, "--database", url, "--nodes", "3", "--duration", "20",
                "--writers", "6", "--readers", "3", "--subscribers", "3", "--tickets", "10", "--sample-interval", "2",
                "--kill-node-after", "6", "--restart-after", "12",
                "--restart-command", "\(PostgresTestServer.script.path) restart \(cluster.directory)",
                "--logs", directory.path("logs"),
            ])
        #expect(!run.crashed)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("OK: no failed request, nothing lost"), "\(run.stdout)")
        #expect(run.stdout.contains("every subscriber got all"))
        #expect(run.stdout.contains("node 3 killed (SIGKILL) at 6"), "\(run.stdout)")
        #expect(run.stdout.contains("database restarted at 12"), "\(run.stdout)")
        let posts = try #require(run.stdout.firstMatch(of: /POST messages: (\d+)/))
        // Beside the whole suite on two cores a debug node posts a few a second: enough to load.
        #expect(Int(posts.output.1) ?? 0 > 30, "the load must actually load the nodes: \(run.stdout)")
    }
}

/// The load tool's memory verdict, on made-up curves: what it calls growth.
@Suite(.timeLimit(.minutes(3))) struct LoadMemoryVerdictTests {
    static func report(_ samples: [(resident: Int, heap: Int?)]) -> LoadReport {
        LoadReport(
            seconds: 100, latencies: [:], failures: [], acknowledgedWrites: 0, delivered: [],
            memory: samples.enumerated().map {
                MemorySample(
                    seconds: Double($0.offset), resident: $0.element.resident << 20,
                    heap: $0.element.heap.map { $0 << 20 }, sqlite: nil)
            })
    }

    @Test func aCurveThatSettlesIsFlatAndOneThatKeepsClimbingIsNot() {
        // 50 samples: warming up over the first fifth, then level (with noise).
        let settles = Self.report(
            (0..<50).map { (resident: min(40 + $0 * 3, 65) + $0 % 3, heap: min(2 + $0, 10) + $0 % 2) })
        #expect(settles.residentIsFlat.flat)
        #expect(settles.heapIsFlat.flat)
        // The heap grows 0.5 MiB per sample: 15 MiB between the second and the last fifth.
        let leaks = Self.report((0..<50).map { (resident: 60, heap: 10 + $0 / 2) })
        #expect(leaks.residentIsFlat.flat, "resident memory alone would not have shown it")
        #expect(!leaks.heapIsFlat.flat)
        let grows = Self.report((0..<50).map { (resident: 40 + $0 * 2, heap: 10) })
        #expect(!grows.residentIsFlat.flat)
    }

    @Test func samplesWithoutTheHeapFigureAreLeftOutRatherThanCountedAsZero() {
        // Two in three early samples lost their /metrics answer: counted as 0, the early median
        // would be 0 and a level heap would look like growth.
        let gaps = Self.report((0..<50).map { (resident: 60, heap: $0 < 25 && $0 % 3 != 0 ? nil : 12) })
        #expect(gaps.heapIsFlat.flat)
        #expect(gaps.heapIsFlat.early == 12 << 20)
    }
}
