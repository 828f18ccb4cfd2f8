import Ticketlog

/// One call to Stream's REST API (the legacy `/channels/...` surface, custom fields flattened),
/// as data: what the live client sends and what the emulator and tests inspect.
public struct StreamChatRequest: Hashable, Sendable, CustomStringConvertible {
    public enum Method: String, Hashable, Sendable {
        case get = "GET"
        case post = "POST"
        case put = "PUT"
        case patch = "PATCH"
        case delete = "DELETE"
    }

    public var method: Method
    /// The path below the base URL, e.g. `/channels/messaging/ticket-42/message`.
    public var path: String
    /// Query parameters beside the client's own (`api_key`), e.g. `hard=true` on a delete.
    public var query: [String: String]
    public var body: JSONValue?

    public init(_ method: Method, _ path: String, query: [String: String] = [:], body: JSONValue? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
    }

    /// A `DELETE … ?hard=true`: removes the message for good.
    public var isHardDelete: Bool { method == .delete && query["hard"] == "true" }

    public var description: String {
        let query = query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        return "\(method.rawValue) \(path)\(query.isEmpty ? "" : "?" + query)"
    }
}
