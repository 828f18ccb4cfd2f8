import Foundation
import HTTPTypes
import Hummingbird
import ServiceLifecycle
import Synchronization
import Ticketlog

/// `GET /api/events?after=POSITION`: every event after a position as Server-Sent Events, first
/// those stored, then each new one as it is committed, so a dashboard keeps a live view with
/// or without Stream. Each event is `id: <position>`, `event: <type>`, `data: <event JSON>`;
/// a reconnecting client sends `Last-Event-ID` and resumes after it. Admins only: the feed
/// spans every ticket.
struct EventFeedRoutes {
    let store: EventStore
    /// A comment line this often keeps proxies from closing an idle stream.
    let keepAlive: Duration

    func register(on group: RouterGroup<TicketlogRequestContext>) {
        group.get("events") { request, context in
            let caller = try context.requireCaller()
            try AccessPolicy.requireAdmin(caller, to: "follow the event feed")
            let after = try Self.startPosition(request)
            let store = self.store
            let keepAlive = self.keepAlive
            var headers: HTTPFields = [:]
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: ": ticketlog event feed after \(after)\n\n"))
                    var events = store.subscribe(from: after + 1).makeAsyncIterator()
                    // Ends when the client goes away (a write throws), the task is cancelled, or
                    // the server shuts down gracefully: that waits for open requests, so the feed
                    // looks at the flag at least once a second instead of once per keep-alive.
                    let shuttingDown = Mutex(false)
                    let wait = min(keepAlive, Self.shutdownCheck)
                    try await withGracefulShutdownHandler {
                        var quiet = Duration.zero
                        while !Task.isCancelled, !shuttingDown.withLock({ $0 }) {
                            if let event = try await events.nextEvent(timeout: wait) {
                                try await writer.write(ByteBuffer(string: try Self.frame(event)))
                                quiet = .zero
                            } else {
                                quiet += wait
                                if quiet >= keepAlive {
                                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                                    quiet = .zero
                                }
                            }
                        }
                    } onGracefulShutdown: {
                        shuttingDown.withLock { $0 = true }
                    }
                    try await writer.finish(nil)
                })
        }
    }

    /// How often an idle feed looks whether the server is shutting down.
    static let shutdownCheck = Duration.seconds(1)

    /// `Last-Event-ID` wins over `after`, as the SSE reconnection protocol wants.
    static func startPosition(_ request: Request) throws -> Int64 {
        let raw = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters["after"].map(String.init)
        guard let raw else { return 0 }
        guard let position = Int64(raw), position >= 0 else {
            throw APIError(.badRequest, code: "bad_request", "after / Last-Event-ID must be a position (0 or more), not '\(raw)'")
        }
        return position
    }

    static func frame(_ event: RecordedEvent) throws -> String {
        "id: \(event.position)\nevent: \(event.type.rawValue)\ndata: \(try event.jsonLine())\n\n"
    }
}
