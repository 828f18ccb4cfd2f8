import Foundation
import Testing
import ToolSupport

/// schemathesis (PyPI, installed by `make test` into .build-venv) against the OpenAPI document a
/// running `ticketlog serve` serves: generated requests for every operation (but the endless
/// event feed), as an admin, on a log seeded by `ticketlog demo`. No answer may be a 5xx, and
/// every answer must be documented: its status, content type, headers and body schema.
@Suite(.timeLimit(.minutes(10))) struct SchemathesisTests {
    static let secret = "schemathesis-secret-of-at-least-32-bytes"

    @Test func generatedRequestsGetDocumentedAnswersAndNo5xx() async throws {
        guard let python = ProcessInfo.processInfo.environment["TICKETLOG_PYTHON"] else {
            Issue.record("TICKETLOG_PYTHON is not set: run `make test`, which installs schemathesis into .build-venv")
            return
        }
        let schemathesis = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("st").path
        let directory = try TemporaryDirectory()
        let database = directory.path("st.sqlite")
        let cli = CLITests.executable.path
        #expect(
            try await awaitProcess(CLITests.executable, ["demo", "--database", database, "--durability", "normal"])
                .status == 0)
        let token = try LocalServer.run(
            cli, ["token", "--subject", "ada", "--role", "admin"], environment: ["TICKETLOG_AUTH_SECRET": Self.secret]
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try LocalServer.freePort()
        let server = try await LocalServer.startServe(
            executable: cli, database: database, port: port, secret: Self.secret, log: directory.path("server.log"),
            environment: [
                "STREAM_API_KEY": "schemathesis-key", "STREAM_API_SECRET": "schemathesis-stream-secret-of-32-bytes",
            ])
        defer { server.terminate() }

        let run = try await awaitProcess(
            URL(fileURLWithPath: schemathesis),
            [
                "run", "http://127.0.0.1:\(port)/openapi.yaml", "-H", "Authorization: Bearer \(token)",
                "--exclude-path", "/api/events", "--exclude-path", "/api/chat/events",
                "--exclude-path", "/api/chat/tickets/{ticketId}/events",
                "--max-examples", "15", "--seed", "1",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            ], in: directory.url.path)
        #expect(run.status == 0, "\(run.stdout.suffix(6_000))\n\(run.stderr.suffix(2_000))")
        #expect(run.stdout.contains("passed"), "schemathesis ran the operations: \(run.stdout.suffix(2_000))")
        #expect(!run.stdout.contains("Server error"), "\(run.stdout.suffix(4_000))")
    }
}
