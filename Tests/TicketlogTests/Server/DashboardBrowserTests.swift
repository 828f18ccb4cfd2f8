import Foundation
import Testing
import ToolSupport

/// The dashboard in a real browser (issue 18): Debian's headless Chromium, driven by Selenium
/// (`Tests/Dashboard/drive_dashboard.py`) against a real `ticketlog serve` on loopback: each
/// role sees exactly its tickets, a post from one browser arrives live in another, a post made
/// offline is sent once on reconnecting, search finds and opens a message, an admin downloads a
/// ticket's evidence bundle, a 360 px screen holds the page. `make test` installs chromium, chromium-driver and selenium.
@Suite(.timeLimit(.minutes(5))) struct DashboardBrowserTests {
    static let secret = "dashboard-browser-secret-of-at-least-32-bytes"

    @Test func peopleUseTheDashboardInABrowser() async throws {
        guard let python = ProcessInfo.processInfo.environment["TICKETLOG_PYTHON"] else {
            Issue.record("TICKETLOG_PYTHON is not set: run `make test`, which installs selenium into .build-venv")
            return
        }
        for program in ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        where !FileManager.default.fileExists(
            atPath: program)
        {
            Issue.record("\(program) is missing: run `make test`, which installs chromium and chromium-driver")
            return
        }
        let directory = try TemporaryDirectory()
        let database = directory.path("dashboard.sqlite")
        let cli = CLITests.executable.path
        #expect(
            try await awaitProcess(CLITests.executable, ["demo", "--database", database, "--durability", "normal"])
                .status == 0)
        var tokens: [String: String] = [:]
        for (name, subject, role) in [
            ("admin", "ada", "admin"), ("agent", "sam", "agent"), ("creator", "kim", "creator"),
            ("owner", "jo", "creator"), ("stranger", "lee", "agent"),
        ] {
            tokens[name] = try LocalServer.run(
                cli, ["token", "--subject", subject, "--role", role],
                environment: ["TICKETLOG_AUTH_SECRET": Self.secret]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // A signed checkpoint, for the evidence bundle an admin downloads.
        let key = directory.path("checkpoint.key")
        #expect(
            try await awaitProcess(CLITests.executable, ["keygen", "--origin", "example.com/desk", "--key", key]).status
                == 0)
        #expect(
            try await awaitProcess(CLITests.executable, ["checkpoint", "--database", database, "--key", key]).status
                == 0)
        let port = try LocalServer.freePort()
        let server = try await LocalServer.startServe(
            executable: cli, database: database, port: port, secret: Self.secret, log: directory.path("server.log"))
        defer { server.terminate() }
        let script = fixturesDirectory.deletingLastPathComponent().appendingPathComponent(
            "Tests/Dashboard/drive_dashboard.py")
        // Chromium leaves a directory in the temporary directory for each browser (its
        // singleton's), even when it quits: they go with the test's directory.
        let temporary = directory.path("tmp")
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        let run = try await awaitProcess(
            URL(fileURLWithPath: python),
            [
                script.path, "http://127.0.0.1:\(port)",
                String(decoding: try JSONEncoder().encode(tokens), as: UTF8.self),
            ],
            in: directory.url.path, environment: ["TMPDIR": temporary])
        #expect(run.status == 0, "\(run.stdout.suffix(4_000))\n\(run.stderr.suffix(4_000))")
        #expect(run.stdout.contains("all dashboard checks passed"), "\(run.stdout.suffix(2_000))")
    }
}
