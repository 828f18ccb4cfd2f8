import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// The OpenAPI document is valid, served, and describes exactly the routes the server has.
@Suite struct OpenAPITests {
    static let documentPath = fixturesDirectory.deletingLastPathComponent()
        .appendingPathComponent("Sources/TicketlogServer/Resources/openapi.yaml").path

    struct Operation: Hashable {
        var method: String
        var path: String
    }

    static func documented() throws -> (version: String, operations: [Operation: (responses: Set<String>, secured: Bool)]) {
        guard let python = ProcessInfo.processInfo.environment["TICKETLOG_PYTHON"] else {
            throw TestSetupError(message: "TICKETLOG_PYTHON is not set: run `make test`, which installs openapi-spec-validator into .build-venv")
        }
        let script = fixturesDirectory.deletingLastPathComponent().appendingPathComponent("Tests/Analytics/openapi_operations.py")
        let run = try runProcess(URL(fileURLWithPath: python), [script.path, documentPath])
        guard run.status == 0 else { throw TestSetupError(message: "the OpenAPI document does not validate: \(run.stderr)") }
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
        let router = try await TicketlogServer.router(store: store, configuration: ServerFixture.configuration)
        let served = Set(router.routes.map { route in
            // Hummingbird writes parameters as :name, OpenAPI as {name}.
            let path = route.path.description.split(separator: "/").map { part in
                part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
            }.joined(separator: "/")
            return Operation(method: route.method.rawValue, path: "/" + path)
        })
        let documentedOperations = Set(operations.keys)
        #expect(served.subtracting(documentedOperations).isEmpty, "served but not documented: \(served.subtracting(documentedOperations))")
        #expect(documentedOperations.subtracting(served).isEmpty, "documented but not served: \(documentedOperations.subtracting(served))")
    }

    @Test func everySecuredOperationAnswersItsDocumented401() async throws {
        let (_, operations) = try Self.documented()
        let fixture = try await ServerFixture.make()
        try await fixture.app.test(.router) { client in
            for (operation, documented) in operations {
                let uri = operation.path.replacingOccurrences(of: "{ticketId}", with: "a")
                    .replacingOccurrences(of: "{channelId}", with: "ticket-a").replacingOccurrences(of: "{messageId}", with: "m-1")
                let response = try await client.execute(uri: uri, method: .init(operation.method)!)
                if documented.secured {
                    #expect(response.status == .unauthorized, "\(operation.method) \(operation.path)")
                    #expect(documented.responses.contains("401"), "\(operation.method) \(operation.path) does not document 401")
                } else {
                    #expect(documented.responses.contains(String(response.status.code)), "\(operation.method) \(operation.path)")
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
