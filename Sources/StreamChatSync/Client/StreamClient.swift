import Foundation
import Ticketlog

/// Stream's API as the sync uses it: one closure. The live implementation sends HTTP with
/// AsyncHTTPClient; tests plug in the emulator, with or without faults.
public struct StreamClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: JSONValue?
        /// Header names in lower case.
        public var headers: [String: String]

        public init(status: Int, body: JSONValue?, headers: [String: String]) {
            self.status = status
            self.body = body
            self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public var send: @Sendable (StreamRequest) async throws -> Response

    public init(send: @escaping @Sendable (StreamRequest) async throws -> Response) {
        self.send = send
    }
}

/// What a Stream response means for the outbox, from the documented error semantics.
enum ResponseClassifier {
    static func outcome(_ result: Result<StreamClient.Response, any Error>, now: Date) -> OutboxStateMachine.Outcome {
        guard case .success(let response) = result else { return .retryable(after: nil) }  // network error
        let body: [String: JSONValue] = if case .object(let object)? = response.body { object } else { [:] }
        let code: Int64? = if case .integer(let code)? = body["code"] { code } else { nil }
        let message: String = if case .string(let text)? = body["message"] { text } else { "" }
        switch response.status {
        case 200..<300:
            // A 2xx whose message has type "error" was not stored (e.g. refused by a hook).
            if case .object(let sent)? = body["message"], sent["type"] == .string("error") {
                return .permanent(reason: "Stream did not store the message (type error)")
            }
            return .success
        case 400 where code == 4 && message.contains("already exists"):
            return .success  // sent before (e.g. the response to an earlier attempt was lost)
        case 429:
            // X-RateLimit-Reset is the Unix second the window resets.
            let reset = response.headers["x-ratelimit-reset"].flatMap { $0.split(separator: ",").first }.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            return .retryable(after: reset.map { max(0, $0 - now.timeIntervalSince1970) })
        case 408, 500...:
            return .retryable(after: nil)
        default:
            return .permanent(reason: "\(response.status)" + (code.map { " code \($0)" } ?? "") + (message.isEmpty ? "" : ": \(message)"))
        }
    }
}
