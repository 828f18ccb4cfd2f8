import Foundation
import FuzzSupport
import Hummingbird
import HummingbirdTesting
import Ticketlog
import TicketlogServer

// libFuzzer target (issue 7): an API request as the router decodes it. The first byte picks an
// endpoint, the rest is its JSON body (writes) or its query string (reads), sent by an admin to
// ticket `ticket-a`. Every answer must be below 500, and an error must leave the log as it was.

private struct Endpoint {
    var method: HTTPRequest.Method
    var path: String
}

private let endpoints: [Endpoint] = [
    Endpoint(method: .post, path: "/api/chat/tickets/a/messages"),
    Endpoint(method: .patch, path: "/api/chat/tickets/a/messages/m-1"),
    Endpoint(method: .post, path: "/api/chat/tickets/a/status"),
    Endpoint(method: .post, path: "/api/chat/tickets/a/deliverables"),
    Endpoint(method: .post, path: "/api/chat/tickets/a/assign"),
    Endpoint(method: .post, path: "/api/chat/tickets"),
    Endpoint(method: .get, path: "/api/chat/tickets/a/messages"),
    Endpoint(method: .get, path: "/api/chat/tickets/a/audit"),
    Endpoint(method: .get, path: "/api/chat/tickets/a/state"),
    Endpoint(method: .get, path: "/api/chat/channels"),
]

private let secret = "fuzz-auth-secret-of-at-least-32-bytes"

private final class Fixture: @unchecked Sendable {
    // @unchecked Sendable: libFuzzer calls the target from one thread, one input at a time.
    var store: EventStore!
    var app: Application<RouterResponder<TicketlogRequestContext>>!
    var token = ""
    var runs = 0

    /// A fresh log with ticket `ticket-a` and message m-1 every 500 inputs (memory stays flat).
    func next() async throws -> (EventStore, Application<RouterResponder<TicketlogRequestContext>>, String) {
        if runs % 500 == 0 {
            store = try EventStore.inMemory()
            let admin = Actor(id: "ada", role: .admin)
            let ticket = StreamID.ticket("a")!
            try await store.execute(.open(title: "A", brand: "acme", creator: "kim"), on: ticket, by: admin)
            try await store.execute(
                .postMessage(messageID: "m-1", text: "first", attachments: []), on: ticket, by: admin)
            let configuration = TicketlogServer.Configuration(
                authSecret: secret, streamAPIKey: "fuzz", streamAPISecret: secret, maximumBodySize: 16_384,
                rateLimit: nil)
            app = Application(router: try await TicketlogServer.router(store: store, configuration: configuration))
            token = try await TicketlogServer.callerToken(subject: "ada", role: .admin, secret: secret)
        }
        runs += 1
        return (store, app, token)
    }
}

private let fixture = Fixture()

/// Percent-encodes everything but unreserved characters, `=` and `&`.
private func query(_ bytes: ArraySlice<UInt8>) -> String {
    var text = ""
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "="),
            UInt8(ascii: "&"):
            text.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            text += String(format: "%%%02X", byte)
        }
    }
    return text
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let selector = input.first else { return 0 }
    let endpoint = endpoints[Int(selector) % endpoints.count]
    let rest = input.dropFirst()
    runToEnd {
        do {
            let (store, app, token) = try await fixture.next()
            let before = try await store.headPosition()
            try await app.test(.router) { client in
                var headers: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]
                headers[.accept] = "application/json"
                let reading = endpoint.method == .get
                let response = try await client.execute(
                    uri: reading ? endpoint.path + "?" + query(rest) : endpoint.path, method: endpoint.method,
                    headers: headers, body: reading ? nil : ByteBuffer(bytes: rest))
                if response.status.code >= 500 {
                    fatalError(
                        "\(endpoint.method) \(endpoint.path) answered \(response.status): \(String(buffer: response.body))"
                    )
                }
                if response.status.code >= 400, try await store.headPosition() != before {
                    fatalError("\(endpoint.method) \(endpoint.path) answered \(response.status) but appended events")
                }
            }
        } catch {
            fatalError("the fuzz harness failed: \(error)")
        }
    }
    return 0
}

@_cdecl("fuzz_http_request_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzzHTTPRequest(UnsafeRawPointer($0), size) } ?? 0 }
}
