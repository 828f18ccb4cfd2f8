import Foundation
import Ticketlog

/// Stream's API as the sync uses it: one closure. The live implementation sends HTTP with
/// AsyncHTTPClient; tests plug in the emulator, with or without faults.
public struct StreamChatClient: Sendable {
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

    public var send: @Sendable (StreamChatRequest) async throws -> Response

    public init(send: @escaping @Sendable (StreamChatRequest) async throws -> Response) {
        self.send = send
    }
}

extension StreamChatClient {
    /// Sends `request`, retrying what Stream's errors say may be retried (network errors, 408,
    /// 5xx, and 429 at its `X-RateLimit-Reset`) up to `attempts` tries in all, waiting as
    /// `backoff` says between them. Returns the last result and what it means.
    func sendRetrying(
        _ request: StreamChatRequest, attempts: Int, backoff: Backoff, now: () -> Date, random: () -> Double = { 1 }
    ) async throws -> (result: Result<Response, any Error>, outcome: OutboxStateMachine.Outcome) {
        var attempt = 0
        while true {
            attempt += 1
            let result: Result<Response, any Error>
            do { result = .success(try await send(request)) } catch { result = .failure(error) }
            let outcome = ResponseClassifier.outcome(result, now: now())
            guard case .retryable(let after) = outcome, attempt < attempts else { return (result, outcome) }
            try await Task.sleep(
                for: .seconds(backoff.delay(afterAttempt: attempt, random: random(), serverSaid: after)))
        }
    }
}

extension StreamChatClient.Response {
    /// Stream's error `code`, when the body has one (it may not: an edge's 429, a bare 503).
    var errorCode: Int64? {
        if case .object(let body)? = body, case .integer(let code)? = body["code"] { code } else { nil }
    }

    /// Stream's error `message`, when the body has one.
    var errorMessage: String? {
        if case .object(let body)? = body, case .string(let text)? = body["message"] { text } else { nil }
    }
}

/// What a Stream response means for the outbox, from the documented error semantics.
enum ResponseClassifier {
    static func outcome(_ result: Result<StreamChatClient.Response, any Error>, now: Date) -> OutboxStateMachine.Outcome
    {
        guard case .success(let response) = result else { return .retryable(after: nil) }  // network error
        let body: [String: JSONValue] = if case .object(let object)? = response.body { object } else { [:] }
        let (code, message) = (response.errorCode, response.errorMessage ?? "")
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
            let reset = response.headers["x-ratelimit-reset"].flatMap { $0.split(separator: ",").first }.flatMap {
                Double($0.trimmingCharacters(in: .whitespaces))
            }
            return .retryable(after: reset.map { max(0, $0 - now.timeIntervalSince1970) })
        case 408, 500...:
            return .retryable(after: nil)
        default:
            return .permanent(
                reason: "\(response.status)" + (code.map { " code \($0)" } ?? "")
                    + (message.isEmpty ? "" : ": \(message)"))
        }
    }
}
