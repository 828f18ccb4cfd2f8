import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Ticketlog

/// The request context of the WebSocket router.
public struct TicketlogWebSocketContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    /// The connection, so that an upgraded one can tell the connection guard it is in use.
    let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}

/// The WebSocket-upgrade child channel with an ``AcceptGuard`` in front: every connection is
/// counted and timed from its accept, as on the plain HTTP/1 channel.
struct GuardedWebSocketChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value
    let inner: HTTP1WebSocketUpgradeChannel
    let connections: ConnectionGuard

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let connections = self.connections
        let inner = self.inner
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AcceptGuard(connections))
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// `GET /api/chat/tickets/:ticketId/ws` (issue 18): a ticket's live chat over a WebSocket — the
/// events of `GET …/events` and posting, on one connection.
///
/// Browsers cannot put a token in a WebSocket request's headers (and one in the URL would reach
/// logs), so the client's first message proves who it is, within 10 s:
/// `{"type":"auth","token":"<JWT>","after":<position>}`. The token is checked as every API
/// call's is, then access to the ticket (a ticket the caller may not read answers exactly as one
/// that does not exist). The server answers `{"type":"ready"}` and then sends
/// `{"type":"event","id":<position>,"event":{…}}` for every event of the ticket after `after`;
/// the client sends `{"type":"post","messageId":"…","text":"…"}` and gets
/// `{"type":"posted","messageId":…,"version":…}` or `{"type":"error","messageId":…,"code":…,
/// "message":…}` (the API's codes; nothing is appended on an error). As on the SSE feed, access
/// is checked again after each assignment change (`{"type":"access-revoked"}`, then the close)
/// and the connection ends when the token expires (`{"type":"token-expired"}`). Connections
/// count with the event feeds (``FeedLimiter``); posts with the caller's rate limit.
struct TicketWebSocket {
    let store: EventStore
    let auth: AuthMiddleware
    let feeds: FeedLimiter
    let posts: RateLimiter?
    static let authTimeout = Duration.seconds(10)
    static let maxMessage = 64 * 1024

    func router() -> Router<TicketlogWebSocketContext> {
        let router = Router(context: TicketlogWebSocketContext.self)
        router.ws("/api/chat/tickets/:ticketId/ws") { _, context in
            _ = try TicketRoutes.stream(try context.parameters.require("ticketId"))
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            // A WebSocket is a request in progress for as long as it lasts: not to be closed for
            // room, nor at the head deadline its connection got at accept.
            let channel = context.requestContext.channel
            channel.eventLoop.execute {
                (try? channel.pipeline.syncOperations.handler(type: AcceptGuard.self))?.upgraded()
            }
            guard let raw = context.requestContext.parameters.get("ticketId"), let stream = StreamID.ticket(raw) else {
                return
            }
            try await Session(route: self, stream: stream, outbound: outbound).run(inbound)
        }
        return router
    }

    struct Hello: Decodable {
        var type: String
        var token: String
        var after: Int64?
    }

    struct Post: Decodable {
        var type: String
        var messageId: String?
        var text: String
        var attachments: [MessagePosted.Attachment]?
    }

    /// One connection.
    struct Session: Sendable {
        let route: TicketWebSocket
        let stream: StreamID
        let outbound: WebSocketOutboundWriter

        func run(_ inbound: WebSocketInboundStream) async throws {
            // Closes a connection that has not proven who it is in time; cancelled once it has.
            let deadline = Task {
                try await Task.sleep(for: TicketWebSocket.authTimeout)
                try await fail("unauthorized", "send {\"type\":\"auth\",\"token\":…} first, within 10 s")
            }
            defer { deadline.cancel() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                var caller: Caller?
                for try await message in inbound.messages(maxSize: TicketWebSocket.maxMessage) {
                    guard case .text(let text) = message else {
                        try await send(["type": "error", "code": "bad_request", "message": "messages are JSON text"])
                        continue
                    }
                    guard let caller else {
                        guard let (who, expiry, after) = try await authenticate(text) else { return }
                        caller = who
                        deadline.cancel()
                        group.addTask { try await follow(who, expiry: expiry, after: after) }
                        continue
                    }
                    try await post(text, by: caller)
                }
                group.cancelAll()
            }
        }

        /// The caller of a valid first message, with the ticket readable and a feed place free;
        /// `nil` (after an error message and the close) otherwise.
        private func authenticate(_ text: String) async throws -> (Caller, Date, Int64)? {
            guard let hello = try? JSONDecoder().decode(Hello.self, from: Data(text.utf8)), hello.type == "auth" else {
                try await fail("unauthorized", "the first message must be {\"type\":\"auth\",\"token\":…}")
                return nil
            }
            do {
                let (caller, expiry) = try await route.auth.authenticate(hello.token)
                try await AccessPolicy.access(stream, for: caller, in: route.store)
                guard (hello.after ?? 0) >= 0 else {
                    throw APIError(.badRequest, code: "bad_request", "after must be a position (0 or more)")
                }
                try await send(["type": "ready", "channelId": stream.rawValue])
                return (caller, expiry, hello.after ?? 0)
            } catch let error as APIError {
                try await fail(error.code, error.message)
                return nil
            }
        }

        /// The ticket's events, until access or the token ends.
        private func follow(_ caller: Caller, expiry: Date, after: Int64) async throws {
            let lease: FeedLimiter.Lease
            do {
                lease = try route.feeds.open(for: caller.id)
            } catch let error as APIError {
                try await fail(error.code, error.message)
                return
            }
            defer { lease.close() }
            let end = ContinuousClock.now + .seconds(expiry.timeIntervalSinceNow)
            var events = route.store.subscribe(to: stream, after: after).makeAsyncIterator()
            while !Task.isCancelled {
                if ContinuousClock.now >= end {
                    try await send(["type": "token-expired"])
                    try await outbound.close(.policyViolation, reason: "token expired")
                    return
                }
                guard let event = try await events.nextEvent(timeout: .seconds(1)) else { continue }
                if AccessPolicy.mayChangeAccess(event) {
                    let ticket = try await route.store.ticketSummary(stream)
                    guard let ticket, AccessPolicy.canAccess(caller, ticket) else {
                        try await send(["type": "access-revoked"])
                        try await outbound.close(.policyViolation, reason: "access revoked")
                        return
                    }
                }
                try await outbound.write(
                    .text("{\"type\":\"event\",\"id\":\(event.position),\"event\":\(try event.jsonLine())}"))
            }
        }

        private func post(_ text: String, by caller: Caller) async throws {
            guard let post = try? JSONDecoder().decode(Post.self, from: Data(text.utf8)), post.type == "post" else {
                try await send([
                    "type": "error", "code": "bad_request",
                    "message": "expected {\"type\":\"post\",\"messageId\":…,\"text\":…}",
                ])
                return
            }
            let messageID = post.messageId ?? route.store.configuration.newID().uuidString.lowercased()
            if let wait = route.posts?.acquire(caller.id) {
                try await send([
                    "type": "error", "messageId": messageID, "code": "rate_limited",
                    "message": "too many requests; try again in \(wait) s",
                ])
                return
            }
            do {
                let outcome = try await route.store.execute(
                    .postMessage(messageID: messageID, text: post.text, attachments: post.attachments ?? []),
                    on: stream, by: caller.actor, requiringAccess: true)
                try await send(["type": "posted", "messageId": messageID, "version": "\(outcome.streamVersion)"])
            } catch let error as EventStoreError {
                let api = APIError(error)
                try await send(["type": "error", "messageId": messageID, "code": api.code, "message": api.message])
            }
        }

        private func send(_ fields: [String: String]) async throws {
            try await outbound.write(.text(String(decoding: try CanonicalJSON.encoder().encode(fields), as: UTF8.self)))
        }

        private func fail(_ code: String, _ message: String) async throws {
            try await send(["type": "error", "code": code, "message": message])
            try await outbound.close(.policyViolation, reason: code)
        }
    }
}
