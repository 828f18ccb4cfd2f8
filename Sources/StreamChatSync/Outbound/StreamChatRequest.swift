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
    public var body: JSONValue?

    public init(_ method: Method, _ path: String, body: JSONValue? = nil) {
        self.method = method
        self.path = path
        self.body = body
    }

    public var description: String { "\(method.rawValue) \(path)" }
}
