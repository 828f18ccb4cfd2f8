import Foundation
import Testing

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
