import Crypto
import Foundation
import Synthetic
import Ticketlog

/// A stand-in for Stream Chat's REST API (the legacy `/channels/...` surface), built from the
/// facts in `shared/stream/README.md`: server auth (raw HS256 JWT with `server: true`, `api_key`
/// query, `Stream-Auth-Type: jwt`), users, channels, members and messages, Stream's error bodies
/// (`code`, `message`, `StatusCode`, `duration`, `more_info`), rate-limit headers on every
/// response, and faults to inject. Pure state: ``handle(_:)`` takes a request and returns a
/// response; ``router`` puts it on HTTP.
public struct StreamEmulator: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [String: String]
        public var headers: [String: String]
        public var body: JSONValue?

        public init(
            method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:],
            body: JSONValue? = nil
        ) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
            self.body = body
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: JSONValue
        public var headers: [String: String] = [:]
        /// A body that is not JSON (a load balancer's bare 503, an edge's 429), sent instead of ``body``.
        public var plainText: String?
    }

    public struct Message: Sendable, Equatable {
        public var id: String
        public var channel: String
        public var text: String
        public var type: String
        public var userID: String
        public var custom: [String: JSONValue]
        public var deleted: Bool
        public var createdAt = ""
        public var updatedAt = ""
    }

    public struct Channel: Sendable, Equatable {
        public var id: String
        public var createdBy: String
        public var custom: [String: JSONValue]
        public var members: [String]
        /// Messages created up to this time are hidden (`POST .../truncate`).
        public var truncatedAt: String?
        public var deletedAt: String?
        public var updatedAt = ""
    }

    public let apiKey: String
    public let apiSecret: String
    public private(set) var users: [String: [String: JSONValue]] = [:]
    public private(set) var channels: [String: Channel] = [:]
    public private(set) var messages: [String: Message] = [:]
    /// Message ids of each channel in the order they were sent.
    public private(set) var channelMessages: [String: [String]] = [:]
    /// Requests that changed state, in order (for tests: what arrived, exactly once?).
    public private(set) var applied: [String] = []
    public var rateLimitPerMinute = 1_000
    public var now: @Sendable () -> Date = { Date() }
    /// Webhook bodies Stream would have sent, in order: every change made through the API
    /// (echoes of the server's own writes included, marked `request_info.type: server`) and
    /// through ``clientSend(_:in:by:text:)`` and friends.
    public private(set) var webhooks: [JSONValue] = []
    /// The last time handed out: `created_at` / `updated_at` follow the clock but strictly
    /// increase, so ordering by time works even within one microsecond.
    private var lastTick: Int64 = 0
    /// The `X-Stream-Client` of the request being handled, echoed as `request_info.sdk`.
    private var currentSDK: String?
    /// What ``serve(_:)`` injects; none by default.
    public var faults = Faults()
    /// How many faults of each kind ``serve(_:)`` injected (`5xx`, `429`, `lost`).
    public internal(set) var injected: [String: Int] = [:]
    var random = SplitMix(seed: 1)
    /// Requests still to be refused with 429 in the current burst.
    var rateLimitedRequests = 0

    public init(apiKey: String, apiSecret: String) {
        self.apiKey = apiKey
        self.apiSecret = apiSecret
    }

    /// Answers `request` without faults; ``serve(_:)`` injects them.
    public mutating func handle(_ request: Request) -> Response {
        var response = route(request)
        let reset = Int(now().timeIntervalSince1970 / 60 + 1) * 60
        response.headers["X-RateLimit-Limit"] = String(rateLimitPerMinute)
        response.headers["X-RateLimit-Remaining"] = String(rateLimitPerMinute - 1)
        response.headers["X-RateLimit-Reset"] = String(reset)
        return Self.withDuration(response)
    }

    static func withDuration(_ response: Response) -> Response {
        var response = response
        if case .object(var object) = response.body {
            object["duration"] = .string("0.42ms")
            response.body = .object(object)
        }
        return response
    }

    private mutating func route(_ request: Request) -> Response {
        if let failure = authenticate(request) { return failure }
        currentSDK = request.headers["x-stream-client"]
        let parts = request.path.split(separator: "/").map(String.init)
        let body = Self.object(request.body)
        switch (request.method, parts.count, parts.first) {
        case ("POST", 1, "users"):
            return upsertUsers(body)
        case ("POST", 4, "channels") where parts[3] == "query":
            return getOrCreateChannel(parts[2], body)
        case ("POST", 3, "channels"):
            return updateChannel(parts[2], body)
        case ("PATCH", 3, "channels"):
            return partialUpdateChannel(parts[2], body)
        case ("POST", 4, "channels") where parts[3] == "message":
            return sendMessage(parts[2], body)
        case ("POST", 4, "channels") where parts[3] == "truncate":
            return truncateChannel(parts[2], body, source: "server")
        case ("DELETE", 3, "channels"):
            return deleteChannel(parts[2], by: nil, source: "server")
        case ("PUT", 2, "messages"):
            return partialUpdateMessage(parts[1], body)
        case ("DELETE", 2, "messages"):
            return deleteMessage(parts[1], hard: request.query["hard"] == "true")
        case ("GET", 2, "messages"):
            guard let message = messages[parts[1]] else {
                return Self.error(404, code: 16, operation: "GetMessage", "message with id \(parts[1]) not found")
            }
            return Response(status: 200, body: .object(["message": Self.json(message)]))
        default:
            return Self.error(404, code: 16, operation: "Request", "Not Found")
        }
    }

    /// Server auth as Stream's SDKs do it: `api_key` query, `Stream-Auth-Type: jwt`, and the
    /// raw JWT (no `Bearer `) in `Authorization`, HS256 over `{"server": true}`.
    private func authenticate(_ request: Request) -> Response? {
        guard request.query["api_key"] == apiKey else {
            return Self.error(401, code: 2, operation: "GetApp", "api_key not valid")
        }
        guard request.headers["stream-auth-type"] == "jwt", let token = request.headers["authorization"] else {
            return Self.error(401, code: 5, operation: "Auth", "missing authentication token")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !token.hasPrefix("Bearer ") else {
            return Self.error(401, code: 43, operation: "Auth", "token is malformed")
        }
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(parts[0]).\(parts[1])".utf8), using: SymmetricKey(data: Data(apiSecret.utf8)))
        guard Self.base64url(Data(mac)) == parts[2] else {
            return Self.error(401, code: 43, operation: "Auth", "signature is invalid")
        }
        guard let payload = Self.decodeBase64url(parts[1]),
            case .object(let claims)? = try? JSONDecoder().decode(JSONValue.self, from: payload),
            claims["server"] == .bool(true)
        else {
            return Self.error(401, code: 5, operation: "Auth", "not a server-side token")
        }
        return nil
    }

    private mutating func upsertUsers(_ body: [String: JSONValue]) -> Response {
        let upserts = Self.object(body["users"])
        guard !upserts.isEmpty else {
            return Self.error(400, code: 4, operation: "UpdateUsers", "users is a required field")
        }
        for (id, user) in upserts { users[id] = Self.object(user) }
        applied.append("users \(upserts.keys.sorted().joined(separator: ","))")
        return Response(status: 201, body: .object(["users": .object(upserts.mapValues { $0 })]))
    }

    private mutating func getOrCreateChannel(_ id: String, _ body: [String: JSONValue]) -> Response {
        if channels[id] == nil {
            var data = Self.object(body["data"])
            guard case .string(let creator)? = data.removeValue(forKey: "created_by_id") else {
                return Self.error(
                    400, code: 4, operation: "GetOrCreateChannel",
                    "either data.created_by or data.created_by_id must be provided when using server side auth.")
            }
            guard users[creator] != nil else {
                return Self.error(
                    400, code: 4, operation: "GetOrCreateChannel",
                    "The following users are involved in channel create operation, but don't exist: [\(creator)]. Please create the user objects before setting up the channel."
                )
            }
            data.removeValue(forKey: "members")
            channels[id] = Channel(id: id, createdBy: creator, custom: data, members: [], updatedAt: tick())
            applied.append("create \(id)")
        }
        let channel = channels[id]!
        // `messages` pagination: oldest to newest within the page; `id_lt` pages back, `id_gt`
        // forward; truncated messages are not returned, soft-deleted ones are (type `deleted`).
        let paging = Self.object(body["messages"])
        let limit = min(300, max(1, Int(Self.integer(paging["limit"]) ?? 25)))
        let visible = visibleMessages(of: id)
        var page = visible[...]
        if let before = Self.string(paging["id_lt"]), let index = visible.firstIndex(where: { $0.id == before }) {
            page = visible[..<index].suffix(limit)
        } else if let after = Self.string(paging["id_gt"]), let index = visible.firstIndex(where: { $0.id == after }) {
            page = visible[(index + 1)...].prefix(limit)
        } else {
            page = visible.suffix(limit)
        }
        return Response(
            status: 201,
            body: .object([
                "channel": Self.json(channel), "messages": .array(page.map(Self.json)),
                "members": .array(
                    channel.members.map { .object(["user_id": .string($0), "user": .object(["id": .string($0)])]) }),
            ]))
    }

    private mutating func updateChannel(_ id: String, _ body: [String: JSONValue]) -> Response {
        guard var channel = channels[id] else {
            return Self.error(404, code: 16, operation: "UpdateChannel", "Can't find channel with id messaging:\(id)")
        }
        for member in Self.array(body["add_members"]) {
            let user: String? =
                switch member {
                case .string(let id): id
                case .object(let object): Self.string(object["user_id"])
                default: nil
                }
            guard let user, users[user] != nil else {
                return Self.error(
                    400, code: 4, operation: "UpdateChannel",
                    "The following users are specified in add_members but don't exist: [\(user ?? "?")]")
            }
            if !channel.members.contains(user) {
                channel.members.append(user)
                emitMember("member.added", user: user, channel: id)
            }
            applied.append("add \(user) to \(id)")
        }
        for member in Self.array(body["remove_members"]) {
            guard let user = Self.string(member) else { continue }
            if channel.members.contains(user) { emitMember("member.removed", user: user, channel: id) }
            channel.members.removeAll { $0 == user }
            applied.append("remove \(user) from \(id)")
        }
        channels[id] = channel
        return Response(
            status: 201,
            body: .object([
                "channel": Self.json(channel),
                "members": .array(channel.members.map { .object(["user_id": .string($0)]) }),
            ]))
    }

    private mutating func partialUpdateChannel(_ id: String, _ body: [String: JSONValue]) -> Response {
        guard var channel = channels[id] else {
            return Self.error(
                404, code: 16, operation: "UpdateChannelPartial", "Can't find channel with id messaging:\(id)")
        }
        let set = Self.object(body["set"])
        for reserved in ["created_at", "updated_at", "members", "member_count"] where set[reserved] != nil {
            return Self.error(
                403, code: 17, operation: "UpdateChannelPartial", "field `\(reserved)` is reserved and cannot updated")
        }
        channel.custom.merge(set) { $1 }
        for key in Self.array(body["unset"]).compactMap(Self.string) { channel.custom.removeValue(forKey: key) }
        channel.updatedAt = tick()
        channels[id] = channel
        applied.append("update \(id) set \(set.keys.sorted().joined(separator: ","))")
        emitChannel("channel.updated", channel, by: Self.string(body["user_id"]), source: "server")
        return Response(status: 200, body: .object(["channel": Self.json(channel), "members": .array([])]))
    }

    private mutating func sendMessage(_ channelID: String, _ body: [String: JSONValue]) -> Response {
        guard channels[channelID] != nil else {
            return Self.error(
                404, code: 16, operation: "SendMessage", "Can't find channel with id messaging:\(channelID)")
        }
        var fields = Self.object(body["message"])
        guard let userID = Self.string(fields.removeValue(forKey: "user_id")), users[userID] != nil else {
            return Self.error(
                400, code: 4, operation: "SendMessage",
                "message.user_id is a required field and must be an existing user")
        }
        let id = Self.string(fields.removeValue(forKey: "id")) ?? UUID().uuidString.lowercased()
        if messages[id] != nil {
            return Self.error(400, code: 4, operation: "SendMessage", "a message with ID \(id) already exists")
        }
        for reserved in ["created_at", "updated_at", "i18n"] where fields[reserved] != nil {
            return Self.error(400, code: 4, operation: "SendMessage", "message.\(reserved) is a reserved field")
        }
        let text = Self.string(fields.removeValue(forKey: "text")) ?? ""
        let type = Self.string(fields.removeValue(forKey: "type")) ?? "regular"
        var message = Message(
            id: id, channel: channelID, text: text, type: type, userID: userID, custom: fields, deleted: false)
        message.createdAt = tick()
        message.updatedAt = message.createdAt
        messages[id] = message
        channelMessages[channelID, default: []].append(id)
        applied.append("message \(id)")
        emit("message.new", message, source: "server")
        return Response(status: 201, body: .object(["message": Self.json(message)]))
    }

    private mutating func partialUpdateMessage(_ id: String, _ body: [String: JSONValue]) -> Response {
        guard var message = messages[id] else {
            return Self.error(404, code: 16, operation: "UpdateMessagePartial", "message with id \(id) not found")
        }
        for (key, value) in Self.object(body["set"]) {
            if key == "text", let text = Self.string(value) { message.text = text } else { message.custom[key] = value }
        }
        message.updatedAt = tick()
        messages[id] = message
        applied.append("edit \(id)")
        emit("message.updated", message, source: "server")
        return Response(status: 201, body: .object(["message": Self.json(message)]))
    }

    private mutating func deleteMessage(_ id: String, hard: Bool = false) -> Response {
        guard var message = messages[id] else {
            return Self.error(404, code: 16, operation: "DeleteMessage", "message with id \(id) not found")
        }
        if hard {
            // Gone for good: text, attachments and the message itself (Stream's hard delete).
            messages[id] = nil
            channelMessages[message.channel]?.removeAll { $0 == id }
            applied.append("hard delete \(id)")
            message.deleted = true
            message.type = "deleted"
            message.text = ""
            emit("message.deleted", message, source: "server", hardDelete: true)
            return Response(status: 200, body: .object(["message": Self.json(message)]))
        }
        message.deleted = true
        message.type = "deleted"
        message.updatedAt = tick()
        messages[id] = message
        applied.append("delete \(id)")
        emit("message.deleted", message, source: "server")
        return Response(status: 200, body: .object(["message": Self.json(message)]))
    }

    private mutating func truncateChannel(_ id: String, _ body: [String: JSONValue], source: String) -> Response {
        guard var channel = channels[id] else {
            return Self.error(404, code: 16, operation: "TruncateChannel", "Can't find channel with id messaging:\(id)")
        }
        channel.truncatedAt = tick()
        channel.updatedAt = channel.truncatedAt!
        channels[id] = channel
        applied.append("truncate \(id)")
        emitChannel("channel.truncated", channel, by: Self.string(body["user_id"]), source: source)
        return Response(status: 201, body: .object(["channel": Self.json(channel)]))
    }

    private mutating func deleteChannel(_ id: String, by user: String?, source: String) -> Response {
        guard var channel = channels[id] else {
            return Self.error(404, code: 16, operation: "DeleteChannel", "Can't find channel with id messaging:\(id)")
        }
        channel.deletedAt = tick()
        channel.updatedAt = channel.deletedAt!
        channels[id] = channel
        applied.append("delete channel \(id)")
        emitChannel("channel.deleted", channel, by: user, source: source)
        return Response(status: 200, body: .object(["channel": Self.json(channel)]))
    }

    /// The messages of a channel a client would see: not truncated, soft-deleted ones included.
    public func visibleMessages(of channel: String) -> [Message] {
        let truncatedAt = channels[channel]?.truncatedAt
        return (channelMessages[channel] ?? []).compactMap { messages[$0] }
            .filter { message in truncatedAt.map { message.createdAt > $0 } ?? true }
    }

    // MARK: Users acting in Stream directly (the app's own clients)

    /// A user (a moderator, in Stream's dashboard or an app) changes the channel's custom fields.
    public mutating func clientUpdateChannel(
        _ id: String, set: [String: JSONValue], unset: [String] = [], by user: String
    ) {
        guard var channel = channels[id] else { return }
        channel.custom.merge(set) { $1 }
        for key in unset { channel.custom.removeValue(forKey: key) }
        channel.updatedAt = tick()
        channels[id] = channel
        emitChannel("channel.updated", channel, by: user, source: "client")
    }

    /// Another backend holding the app's API secret (client name `sdk`) changes the channel's
    /// custom fields on behalf of `user`: `request_info.type: server`.
    public mutating func serverUpdateChannel(_ id: String, set: [String: JSONValue], by user: String, sdk: String) {
        guard var channel = channels[id] else { return }
        channel.custom.merge(set) { $1 }
        channel.updatedAt = tick()
        channels[id] = channel
        let saved = currentSDK
        currentSDK = sdk
        emitChannel("channel.updated", channel, by: user, source: "server")
        currentSDK = saved
    }

    public mutating func clientTruncate(_ id: String, by user: String) {
        _ = truncateChannel(id, ["user_id": .string(user)], source: "client")
    }

    public mutating func clientDeleteChannel(_ id: String, by user: String) {
        _ = deleteChannel(id, by: user, source: "client")
    }

    public mutating func clientAddMember(_ user: String, to id: String) {
        guard var channel = channels[id], !channel.members.contains(user) else { return }
        users[user, default: ["id": .string(user)]] = users[user] ?? ["id": .string(user)]
        channel.members.append(user)
        channels[id] = channel
        emitMember("member.added", user: user, channel: id, source: "client")
    }

    public mutating func clientRemoveMember(_ user: String, from id: String) {
        guard var channel = channels[id], channel.members.contains(user) else { return }
        channel.members.removeAll { $0 == user }
        channels[id] = channel
        emitMember("member.removed", user: user, channel: id, source: "client")
    }

    /// A user posts in a channel from a Stream client app: `request_info.type: client`, and
    /// whatever custom fields the client chose to set (none, usually).
    public mutating func clientSend(
        _ id: String, in channel: String, by user: String, text: String, custom: [String: JSONValue] = [:]
    ) {
        var message = Message(
            id: id, channel: channel, text: text, type: "regular", userID: user, custom: custom, deleted: false)
        message.createdAt = tick()
        message.updatedAt = message.createdAt
        messages[id] = message
        channelMessages[channel, default: []].append(id)
        emit("message.new", message, source: "client")
    }

    /// A user edits a message from a Stream client: its author, or `user` (a moderator, or
    /// anyone the channel's permissions let).
    public mutating func clientEdit(_ id: String, text: String, by user: String? = nil) {
        guard var message = messages[id] else { return }
        message.text = text
        message.updatedAt = tick()
        messages[id] = message
        emit("message.updated", message, by: user, source: "client")
    }

    /// A user deletes a message from a Stream client: its author, or `user`.
    public mutating func clientDelete(_ id: String, by user: String? = nil) {
        guard var message = messages[id] else { return }
        message.deleted = true
        message.type = "deleted"
        message.updatedAt = tick()
        messages[id] = message
        emit("message.deleted", message, by: user, source: "client")
    }

    private mutating func tick() -> String {
        let now = Int64(now().timeIntervalSince1970 * 1_000_000)
        lastTick = max(now, lastTick + 1)
        return Timestamp(microsecondsSinceEpoch: lastTick).description
    }

    /// The webhook of a message change; `user` is who made it (the author when `nil`).
    private mutating func emit(
        _ type: String, _ message: Message, by user: String? = nil, source: String, hardDelete: Bool = false
    ) {
        let json = Self.object(Self.json(message))
        var body: [String: JSONValue] = [
            "type": .string(type), "cid": .string("messaging:\(message.channel)"),
            "channel_id": .string(message.channel),
            "channel_type": .string("messaging"), "message": .object(json),
            "user": .object(["id": .string(user ?? message.userID)]),
            "created_at": .string(message.updatedAt),
            "request_info": requestInfo(source),
        ]
        if type == "message.deleted" { body["hard_delete"] = .bool(hardDelete) }
        webhooks.append(.object(body))
    }

    private mutating func emitMember(_ type: String, user: String, channel: String, source: String = "server") {
        webhooks.append(
            .object([
                "type": .string(type), "cid": .string("messaging:\(channel)"), "channel_id": .string(channel),
                "channel_type": .string("messaging"), "member": .object(["user_id": .string(user)]),
                "user": .object(["id": .string(user)]), "created_at": .string(tick()),
                "request_info": requestInfo(source),
            ]))
    }

    private mutating func emitChannel(_ type: String, _ channel: Channel, by user: String?, source: String) {
        var body: [String: JSONValue] = [
            "type": .string(type), "cid": .string("messaging:\(channel.id)"), "channel_id": .string(channel.id),
            "channel_type": .string("messaging"), "channel": Self.json(channel), "created_at": .string(tick()),
            "request_info": requestInfo(source),
        ]
        if let user { body["user"] = .object(["id": .string(user)]) }
        webhooks.append(.object(body))
    }

    /// `request_info` as Stream sends it: the client kind and, for server calls, their `X-Stream-Client`.
    private func requestInfo(_ source: String) -> JSONValue {
        .object([
            "type": .string(source), "sdk": source == "server" ? (currentSDK.map(JSONValue.string) ?? .null) : .null,
        ])
    }

    /// Stream's error body.
    static func error(_ status: Int, code: Int, operation: String, _ reason: String) -> Response {
        Response(
            status: status,
            body: .object([
                "code": .integer(Int64(code)), "message": .string("\(operation) failed with error: \"\(reason)\""),
                "StatusCode": .integer(Int64(status)),
                "more_info": .string("https://getstream.io/chat/docs/api_errors_response"),
                "details": .array([]),
            ]))
    }

    static func json(_ message: Message) -> JSONValue {
        var object = message.custom
        object["id"] = .string(message.id)
        object["text"] = .string(message.text)
        object["type"] = .string(message.type)
        object["user"] = .object(["id": .string(message.userID)])
        object["cid"] = .string("messaging:\(message.channel)")
        object["created_at"] = .string(message.createdAt)
        object["updated_at"] = .string(message.updatedAt)
        if message.deleted { object["deleted_at"] = .string(message.updatedAt) }
        return .object(object)
    }

    static func json(_ channel: Channel) -> JSONValue {
        var object = channel.custom
        object["id"] = .string(channel.id)
        object["type"] = .string("messaging")
        object["cid"] = .string("messaging:\(channel.id)")
        object["created_by"] = .object(["id": .string(channel.createdBy)])
        object["member_count"] = .integer(Int64(channel.members.count))
        object["updated_at"] = .string(channel.updatedAt)
        if let truncatedAt = channel.truncatedAt { object["truncated_at"] = .string(truncatedAt) }
        if let deletedAt = channel.deletedAt { object["deleted_at"] = .string(deletedAt) }
        return .object(object)
    }

    static func object(_ value: JSONValue?) -> [String: JSONValue] {
        if case .object(let object)? = value { return object }
        return [:]
    }

    static func array(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let array)? = value { return array }
        return []
    }

    static func integer(_ value: JSONValue?) -> Int64? {
        if case .integer(let value)? = value { return value }
        return nil
    }

    static func string(_ value: JSONValue?) -> String? {
        if case .string(let string)? = value { return string }
        return nil
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeBase64url(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
