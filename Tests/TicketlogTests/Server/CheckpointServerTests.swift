import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import ToolSupport

@testable import Ticketlog

/// `ticketlog serve --checkpoint-key`: checkpoints signed as the log grows, served at
/// `GET /api/checkpoint`, and evidence bundles for admins at `GET …/evidence` (issue 16).
@Suite(.timeLimit(.minutes(3))) struct CheckpointServerTests {
    static let secret = "checkpoint-server-secret-of-32-bytes"

    static func get(_ url: String, token: String?) async throws -> (status: UInt, body: ByteBuffer, type: String?) {
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (
            response.status.code, try await response.body.collect(upTo: 16 << 20),
            response.headers.first(name: "Content-Type")
        )
    }

    static func token(_ subject: String, _ role: String) throws -> String {
        try LocalServer.run(
            CLITests.executable.path, ["token", "--subject", subject, "--role", role],
            environment: ["TICKETLOG_AUTH_SECRET": secret]
        ).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func theServerSignsAsTheLogGrowsAndServesCheckpointsAndBundles() async throws {
        let directory = try TemporaryDirectory()
        let database = directory.path("log.sqlite")
        #expect(try CLITests.run("demo", "--database", database, "--durability", "normal").status == 0)
        let key = directory.path("log.key")
        #expect(try CLITests.run("keygen", "--origin", "example.com/ticketlog", "--key", key).status == 0)
        let port = try LocalServer.freePort()
        let serve = try await LocalServer.startServe(
            executable: CLITests.executable.path, database: database, port: port, secret: Self.secret,
            log: directory.path("serve.log"),
            extra: ["--checkpoint-key", key, "--checkpoint-every", "3", "--checkpoint-interval", "3600"])
        defer { serve.terminate() }
        let base = "http://127.0.0.1:\(port)"
        let admin = try Self.token("ada", "admin")
        let verifier = try NoteVerifier(text: String(contentsOfFile: directory.path("log.pub"), encoding: .utf8))

        @Sendable func latest() async throws -> Checkpoint? {
            let response = try await Self.get("\(base)/api/checkpoint", token: admin)
            guard response.status == 200 else { return nil }
            return try Checkpoint.open(String(buffer: response.body), verifier: verifier)
        }
        // The 14 events of the demo are signed as soon as the server runs.
        try await waitUntil("the first checkpoint") { try await latest()?.size == 14 }
        #expect(try await Self.get("\(base)/api/checkpoint", token: nil).status == 401)

        for number in 0..<3 {
            var request = HTTPClientRequest(url: "\(base)/api/chat/tickets/1001/messages")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(admin)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"text":"checkpointed \#(number)"}"#))
            #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code == 201)
        }
        try await waitUntil("a checkpoint after three more events") { try await latest()?.size == 17 }
        let old = try await Self.get("\(base)/api/checkpoint?size=14", token: try Self.token("kim", "creator"))
        #expect(old.status == 200)
        let oldCheckpoint = try Checkpoint.open(String(buffer: old.body), verifier: verifier)
        #expect(oldCheckpoint.size == 14)
        #expect(try await Self.get("\(base)/api/checkpoint?size=15", token: admin).status == 404)
        #expect(try await Self.get("\(base)/api/checkpoint?size=x", token: admin).status == 400)

        // The evidence bundle: admins only, a tar archive that verifies offline.
        #expect(
            try await Self.get("\(base)/api/chat/tickets/1001/evidence", token: try Self.token("sam", "agent")).status
                == 403)
        #expect(try await Self.get("\(base)/api/chat/tickets/nope/evidence", token: admin).status == 404)
        let bundle = try await Self.get("\(base)/api/chat/tickets/1001/evidence", token: admin)
        #expect(bundle.status == 200 && bundle.type == "application/x-tar")
        let archive = directory.path("evidence.tar")
        try Data(bundle.body.readableBytesView).write(to: URL(fileURLWithPath: archive))
        let unpacked = directory.path("unpacked")
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        let tar = try runProcess(URL(fileURLWithPath: "/bin/tar"), ["-xf", archive, "-C", unpacked])
        #expect(tar.status == 0, "\(tar.stderr)")
        let folder = unpacked + "/ticket-1001-evidence-17"
        let verified = try CLITests.run("verify-evidence", folder, "--key", directory.path("log.pub"))
        #expect(
            verified.status == 0 && verified.stdout.hasPrefix("OK: 17 events of ticket-1001"),
            "\(verified.stdout)\(verified.stderr)")
    }
}
