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
///
/// `GET /api/chat/tickets/:ticketId/events` is the same for one ticket, for anyone who may read
/// it (positions are still the log's, so `Last-Event-ID` works the same).
///
/// A feed ends when the caller's token expires (with an `event: token-expired` frame, so the
/// client knows to come back with a new token): access was proven once, at the start, and must
/// not outlive its proof. Feeds are counted per caller and in total (``FeedLimiter``).
struct EventFeedRoutes {
    let store: EventStore
    /// A comment line this often keeps proxies from closing an idle stream.
    let keepAlive: Duration
    let feeds: FeedLimiter

    func register(on group: RouterGroup<TicketlogRequestContext>) {
        group.get("events") { request, context in
            let caller = try context.requireCaller()
            try AccessPolicy.requireAdmin(caller, to: "follow the event feed")
            let after = try Self.startPosition(request)
            let subscription = store.subscribe(from: after + 1)
            return try feed(
                caller: caller, context: context, opening: ": ticketlog event feed after \(after)\n\n",
                events: { subscription.makeAsyncIterator() }, next: { try await $0.nextEvent(timeout: $1) },
                stillAllowed: { _ in true })
        }
        // The events of every ticket the caller may read (issue 18): what keeps the dashboard's
        // ticket list and open ticket live on one connection. Access is decided per ticket as its
        // events pass (again after each assignment change), so a ticket given to someone else
        // stops arriving; for admins it is the whole log.
        // `after=now` starts at the head: a page that has just read its tickets wants what comes
        // next, not the whole log. The first frame says where the feed starts
        // (`id: N`, `event: head`), so a reconnection resumes from there.
        group.get("chat/events") { request, context in
            let caller = try context.requireCaller()
            let after =
                request.uri.queryParameters["after"] == "now"
                    && request.headers[HTTPField.Name("Last-Event-ID")!] == nil
                ? try await store.headPosition() : try Self.startPosition(request)
            let subscription = store.subscribe(from: after + 1)
            let store = self.store
            let access = AccessMemo()
            return try feed(
                caller: caller, context: context,
                opening:
                    ": ticketlog event feed of \(caller.id)'s tickets\nid: \(after)\nevent: head\ndata: {\"position\":\(after)}\n\n",
                events: { subscription.makeAsyncIterator() },
                next: { events, step in
                    let deadline = ContinuousClock.now + step
                    while let event = try await events.nextEvent(
                        timeout: max(.milliseconds(1), deadline - ContinuousClock.now))
                    {
                        if try await access.allows(caller, event, in: store) { return event }
                        if ContinuousClock.now >= deadline { return nil }
                    }
                    return nil
                },
                stillAllowed: { _ in true })
        }
        // One ticket's events, for anyone who may read the ticket (issue 18), for clients that
        // follow one conversation. Access is checked again after every assignment change of the
        // ticket: an agent unassigned mid-feed gets `event: access-revoked` and the feed ends.
        group.get("chat/tickets/:ticketId/events") { request, context in
            let caller = try context.requireCaller()
            let stream = try TicketRoutes.stream(try context.parameters.require("ticketId"))
            try await AccessPolicy.access(stream, for: caller, in: store)
            let after = try Self.startPosition(request)
            let subscription = store.subscribe(to: stream, after: after)
            let store = self.store
            return try feed(
                caller: caller, context: context,
                opening: ": ticketlog event feed of \(stream) after \(after)\n\n",
                events: { subscription.makeAsyncIterator() }, next: { try await $0.nextEvent(timeout: $1) },
                stillAllowed: { event in
                    guard AccessPolicy.mayChangeAccess(event) else { return true }
                    guard let ticket = try await store.ticketSummary(stream) else { return false }
                    return AccessPolicy.canAccess(caller, ticket)
                })
        }
    }

    /// A Server-Sent Events response of `events`: `opening`, then each event as a frame, a
    /// comment line while quiet. Ends when the client goes away, the server shuts down, the
    /// caller's token expires (`event: token-expired`) or `stillAllowed` says no after an event
    /// (`event: access-revoked`, that event not sent).
    private func feed<Events>(
        caller: Caller, context: TicketlogRequestContext, opening: String,
        events makeEvents: @escaping @Sendable () -> Events,
        next: @escaping @Sendable (inout Events, Duration) async throws -> RecordedEvent?,
        stillAllowed: @escaping @Sendable (RecordedEvent) async throws -> Bool
    ) throws -> Response {
        let lease = try feeds.open(for: caller.id)
        let expiry = context.callerTokenExpiry.map { ContinuousClock.now + .seconds($0.timeIntervalSinceNow) }
        let keepAlive = self.keepAlive
        var headers: HTTPFields = [:]
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                defer { lease.close() }
                try await writer.write(ByteBuffer(string: opening))
                var events = makeEvents()
                // Ends when the client goes away (a write throws), the task is cancelled, or
                // the server shuts down gracefully: that waits for open requests, so the feed
                // looks at the flag at least once a second instead of once per keep-alive.
                let shuttingDown = Mutex(false)
                let wait = min(keepAlive, Self.shutdownCheck)
                try await withGracefulShutdownHandler {
                    var quiet = Duration.zero
                    while !Task.isCancelled, !shuttingDown.withLock({ $0 }) {
                        if let expiry, ContinuousClock.now >= expiry {
                            try await writer.write(ByteBuffer(string: "event: token-expired\ndata: {}\n\n"))
                            break
                        }
                        let step = expiry.map { min(wait, max(.milliseconds(1), $0 - ContinuousClock.now)) } ?? wait
                        if let event = try await next(&events, step) {
                            guard try await stillAllowed(event) else {
                                try await writer.write(ByteBuffer(string: "event: access-revoked\ndata: {}\n\n"))
                                break
                            }
                            try await writer.write(ByteBuffer(string: try Self.frame(event)))
                            quiet = .zero
                        } else {
                            quiet += step
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

    /// How often an idle feed looks whether the server is shutting down (and its token expired).
    static let shutdownCheck = Duration.seconds(1)

    /// `Last-Event-ID` wins over `after`, as the SSE reconnection protocol wants.
    static func startPosition(_ request: Request) throws -> Int64 {
        let raw =
            request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters["after"].map(String.init)
        guard let raw else { return 0 }
        guard let position = Int64(raw), position >= 0 else {
            throw APIError(
                .badRequest, code: "bad_request", "after / Last-Event-ID must be a position (0 or more), not '\(raw)'")
        }
        return position
    }

    static func frame(_ event: RecordedEvent) throws -> String {
        "id: \(event.position)\nevent: \(event.type.rawValue)\ndata: \(try event.jsonLine())\n\n"
    }
}

/// Which tickets one caller's feed may carry, decided once per ticket and again after each
/// assignment change (access to a ticket comes from its assignment and ownership).
final class AccessMemo: Sendable {
    private let decided = Mutex<[StreamID: Bool]>([:])

    func allows(_ caller: Caller, _ event: RecordedEvent, in store: EventStore) async throws -> Bool {
        if caller.role == .admin { return true }
        if !AccessPolicy.mayChangeAccess(event), let known = decided.withLock({ $0[event.stream] }) { return known }
        let ticket = try await store.ticketSummary(event.stream)
        let allowed = ticket.map { AccessPolicy.canAccess(caller, $0) } ?? false
        decided.withLock { $0[event.stream] = allowed }
        return allowed
    }
}

/// Counts open event feeds per caller and in total; beyond either limit, 429.
final class FeedLimiter: Sendable {
    let perCaller: Int
    let total: Int
    private let open = Mutex<[String: Int]>([:])

    init(perCaller: Int, total: Int) {
        self.perCaller = perCaller
        self.total = total
    }

    /// A place for one more feed of `caller`, given back by ``Lease/close()`` (or when the lease
    /// goes away).
    func open(for caller: String) throws -> Lease {
        try open.withLock { open in
            if open[caller, default: 0] >= perCaller {
                throw APIError(
                    .tooManyRequests, code: "too_many_feeds",
                    "\(caller) has \(perCaller) event feeds open already; close one first", headers: [.retryAfter: "5"])
            }
            if open.values.reduce(0, +) >= total {
                throw APIError(
                    .tooManyRequests, code: "too_many_feeds",
                    "the server has \(total) event feeds open; try again later",
                    headers: [.retryAfter: "5"])
            }
            open[caller, default: 0] += 1
        }
        return Lease(limiter: self, caller: caller)
    }

    fileprivate func close(_ caller: String) {
        open.withLock { open in
            open[caller, default: 1] -= 1
            if open[caller] == 0 { open[caller] = nil }
        }
    }

    var openFeeds: Int { open.withLock { $0.values.reduce(0, +) } }

    /// One open feed's place.
    final class Lease: Sendable {
        private let limiter: FeedLimiter
        private let caller: String
        private let closed = Mutex(false)

        fileprivate init(limiter: FeedLimiter, caller: String) {
            self.limiter = limiter
            self.caller = caller
        }

        func close() {
            let first = closed.withLock { closed in
                defer { closed = true }
                return !closed
            }
            if first { limiter.close(caller) }
        }

        deinit { close() }
    }
}
