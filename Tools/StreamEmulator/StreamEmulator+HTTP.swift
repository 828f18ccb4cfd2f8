import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import Ticketlog

/// The emulator on HTTP: every request goes through ``StreamEmulator/handle(_:)`` under a lock.
public final class EmulatorServer: Sendable {
    public let state: Mutex<StreamEmulator>

    public init(_ emulator: StreamEmulator) {
        state = Mutex(emulator)
    }

    /// A router answering every path like Stream would.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
            let buffer = try await request.body.collect(upTo: 16 << 20)
            let body = buffer.readableBytes == 0 ? nil : try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: buffer))
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let emulated = self.state.withLock {
                $0.handle(.init(method: request.method.rawValue, path: request.uri.path, query: query, headers: headers, body: body))
            }
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            for (name, value) in emulated.headers { fields[HTTPField.Name(name)!] = value }
            return Response(
                status: .init(code: emulated.status), headers: fields,
                body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(emulated.body))))
        }
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("**", method: method, use: handler)
        }
        return router
    }
}
