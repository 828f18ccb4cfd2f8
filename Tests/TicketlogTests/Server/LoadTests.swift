import Foundation
import Testing

/// Mixed load (issue 7), short form: `ticketlog-load` against the `ticketlog serve` of this build
/// for a few seconds — writers, readers and event-feed subscribers at once. `make soak` runs it
/// for ten minutes on the release build.
@Suite struct LoadTests {
    static let executable = CLITests.executable.deletingLastPathComponent().appendingPathComponent("ticketlog-load")

    @Test func mixedLoadLosesNothingAndEveryRequestSucceeds() async throws {
        let directory = try TemporaryDirectory()
        let run = try await awaitProcess(Self.executable, [
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
