import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer
@testable import TicketlogStreamChat

/// The OpenAPI document is valid, served, and describes exactly the routes the server has.
@Suite(.timeLimit(.minutes(10))) struct OpenAPITests {
    static let documentPath = fixturesDirectory.deletingLastPathComponent()
        .appendingPathComponent("Sources/TicketlogServer/Resources/openapi.yaml").path

    struct Operation: Hashable {
        var method: String
        var path: String
    }

    static func documented() throws -> (
        version: String, operations: [Operation: (responses: Set<String>, secured: Bool)]
    ) {
        guard let python = ProcessInfo.processInfo.environment["TICKETLOG_PYTHON"] else {
            throw TestSetupError(
                message:
                    "TICKETLOG_PYTHON is not set: run `make test`, which installs openapi-spec-validator into .build-venv"
            )
        }
        let script = fixturesDirectory.deletingLastPathComponent().appendingPathComponent(
            "Tests/Analytics/openapi_operations.py")
        let run = try runProcess(URL(fileURLWithPath: python), [script.path, documentPath])
        guard run.status == 0 else {
            throw TestSetupError(message: "the OpenAPI document does not validate: \(run.stderr)")
        }
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        var operations: [Operation: (Set<String>, Bool)] = [:]
        for entry in object?["operations"] as? [[String: Any]] ?? [] {
            let operation = Operation(method: entry["method"] as! String, path: entry["path"] as! String)
            operations[operation] = (Set(entry["responses"] as! [String]), entry["secured"] as! Bool)
        }
        return (object?["openapi"] as? String ?? "", operations)
    }

    @Test func theDocumentIsValidOpenAPI31AndNamesEveryRoute() async throws {
        let (version, operations) = try Self.documented()
        #expect(version == "3.1.0")
        let store = try EventStore.inMemory()
        // The document describes the server as `ticketlog serve` composes it: Stream webhooks mounted.
        // Both routers: the HTTP one and the one the WebSocket upgrade is decided by.
        let routers = try await TicketlogServer.routers(
            store: store, configuration: ServerFixture.configuration, logger: .disabled,
            extensions: [StreamChatServerExtension(store: store, apiSecret: ServerFixture.streamSecret)],
            connections: nil)
        let routes =
            routers.http.routes.map { ($0.method, $0.path) } + routers.webSocket.routes.map { ($0.method, $0.path) }
        let served = Set(
            routes.map { method, path in
                // Hummingbird writes parameters as :name, OpenAPI as {name}.
                let path = path.description.split(separator: "/").map { part in
                    part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                }.joined(separator: "/")
                return Operation(method: method.rawValue, path: "/" + path)
            })
        let documentedOperations = Set(operations.keys)
        #expect(
            served.subtracting(documentedOperations).isEmpty,
            "served but not documented: \(served.subtracting(documentedOperations))")
        #expect(
            documentedOperations.subtracting(served).isEmpty,
            "documented but not served: \(documentedOperations.subtracting(served))")
    }

    @Test func everySecuredOperationAnswersItsDocumented401() async throws {
        let (_, operations) = try Self.documented()
        let fixture = try await ServerFixture.make()
        try await fixture.app.test(.router) { client in
            for (operation, documented) in operations {
                let uri = operation.path.replacingOccurrences(of: "{ticketId}", with: "a")
                    .replacingOccurrences(of: "{channelId}", with: "ticket-a").replacingOccurrences(
                        of: "{messageId}", with: "m-1")
                let response = try await client.execute(uri: uri, method: .init(operation.method)!)
                if documented.secured {
                    #expect(response.status == .unauthorized, "\(operation.method) \(operation.path)")
                    #expect(
                        documented.responses.contains("401"),
                        "\(operation.method) \(operation.path) does not document 401")
                } else {
                    #expect(
                        documented.responses.contains(String(response.status.code)),
                        "\(operation.method) \(operation.path)")
                }
            }
        }
    }

    @Test func theServedDocumentIsTheOneInTheRepository() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.app.test(.router) { client in
            let response = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("application/yaml") == true)
            #expect(Data(buffer: response.body) == (try Data(contentsOf: URL(fileURLWithPath: Self.documentPath))))
        }
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension OpenAPITests {
    /// A conversation's real responses, successes and errors, validate against the documented
    /// statuses and schemas.
    @Test func realResponsesMatchTheDocumentedSchemas() async throws {
        guard let python = ProcessInfo.processInfo.environment["TICKETLOG_PYTHON"] else {
            Issue.record("TICKETLOG_PYTHON is not set: run `make test`")
            return
        }
        let fixture = try await ServerFixture.make()
        let admin = try await ServerFixture.token("ada", .admin)
        let creator = try await ServerFixture.token("kim", .creator)
        let stranger = try await ServerFixture.token("jo", .creator)
        let recorded = Recorder()
        try await fixture.app.test(.router) { client in
            func call(
                _ method: HTTPRequest.Method, _ template: String, _ uri: String, _ token: String?, _ body: String? = nil
            ) async throws {
                let response = try await client.execute(
                    uri: uri, method: method, headers: ServerFixture.headers(token),
                    body: body.map { ByteBuffer(string: $0) })
                let json = try? JSONSerialization.jsonObject(with: Data(buffer: response.body))
                recorded.add([
                    "method": method.rawValue, "path": template, "status": Int(response.status.code),
                    "body": json ?? NSNull(),
                ])
            }
            let t = "/api/chat/tickets/{ticketId}"
            try await call(.get, "/healthz", "/healthz", nil)
            try await call(.get, "/api/chat/token", "/api/chat/token", creator)
            try await call(.get, "/api/chat/channels", "/api/chat/channels", creator)
            try await call(.get, "/api/chat/channels/{channelId}", "/api/chat/channels/ticket-a", creator)
            try await call(
                .post, "/api/chat/tickets", "/api/chat/tickets", admin,
                #"{"ticketId":"c","title":"C","brand":"acme","creator":"kim"}"#)
            try await call(
                .post, "/api/chat/tickets", "/api/chat/tickets", admin,
                #"{"ticketId":"c","title":"C","brand":"acme","creator":"kim"}"#)
            try await call(.post, "\(t)/join", "/api/chat/tickets/c/join", creator)
            try await call(.post, "\(t)/assign", "/api/chat/tickets/c/assign", admin, #"{"agent":"sam"}"#)
            try await call(
                .post, "\(t)/messages", "/api/chat/tickets/c/messages", creator,
                #"{"text":"hi","messageId":"c-1","attachments":[{"kind":"image","url":"https://x.example/i.png"}]}"#)
            try await call(
                .patch, "\(t)/messages/{messageId}", "/api/chat/tickets/c/messages/c-1", creator, #"{"text":"hi!"}"#)
            try await call(
                .patch, "\(t)/messages/{messageId}", "/api/chat/tickets/c/messages/c-1", admin, #"{"text":"not mine"}"#)
            try await call(.get, "\(t)/messages", "/api/chat/tickets/c/messages?limit=1", creator)
            try await call(.delete, "\(t)/messages/{messageId}", "/api/chat/tickets/c/messages/c-1", admin)
            try await call(.post, "\(t)/status", "/api/chat/tickets/c/status", admin, #"{"status":"in_review"}"#)
            try await call(.post, "\(t)/status", "/api/chat/tickets/c/status", admin, #"{"status":"in_review"}"#)
            try await call(
                .post, "\(t)/deliverables", "/api/chat/tickets/c/deliverables", creator,
                #"{"title":"Cut","url":"https://x.example/c.mp4","kind":"video"}"#)
            try await call(.get, "\(t)/audit", "/api/chat/tickets/c/audit", admin)
            try await call(.get, "\(t)/state", "/api/chat/tickets/c/state?at=3", admin)
            try await call(.get, "\(t)/state", "/api/chat/tickets/c/state", stranger)
            try await call(.post, "\(t)/leave", "/api/chat/tickets/c/leave", creator)
            try await call(.get, "\(t)/audit", "/api/chat/tickets/zz/audit", admin)
            try await call(.get, "\(t)/messages", "/api/chat/tickets/c/messages?limit=0", admin)
            try await call(
                .post, "\(t)/messages", "/api/chat/tickets/c/messages", admin, #"{"text":"x","expectedVersion":1}"#)
            try await call(.get, "/api/chat/channels", "/api/chat/channels", nil)
        }
        let directory = try TemporaryDirectory()
        let file = directory.path("responses.json")
        try JSONSerialization.data(withJSONObject: recorded.all).write(to: URL(fileURLWithPath: file))
        let script = fixturesDirectory.deletingLastPathComponent().appendingPathComponent(
            "Tests/Analytics/check_responses.py")
        let run = try runProcess(URL(fileURLWithPath: python), [script.path, Self.documentPath, file])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("checked 24 responses"), "\(run.stderr)")
    }
}

/// Collects records from inside a test client closure.
final class Recorder: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var records: [[String: Any]] = []
    func add(_ record: [String: Any]) { lock.withLock { records.append(record) } }
    var all: [[String: Any]] { lock.withLock { records } }
}
