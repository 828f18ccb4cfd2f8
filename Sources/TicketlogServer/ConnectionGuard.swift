import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization
import Ticketlog

/// What any one client can hold of the server: a bounded number of connections, each with a
/// deadline for every phase in which the server waits for the client. Without it, a few hundred
/// connections that send half a request and stop (no credentials needed) hold every file
/// descriptor the process may open, and `/healthz` stops answering.
///
/// - A request's head must be complete within `requestHeadTimeout` of its first byte (or of the
///   connection's opening), its body within `requestBodyTimeout` of the head; a kept-alive
///   connection may wait `idleTimeout` for its next request. A connection past its deadline is
///   closed.
/// - At most `maximum` connections are open. When one more arrives, the connection that has been
///   waiting for a request longest is closed to make room — a client that is slow to send its
///   head loses its place, not the server its ability to answer; when every connection has a
///   request in progress, the new one is closed instead. Requests in progress (an event feed, a
///   slow append) are never cut for room.
///
/// Shared by every connection of one server; each connection has a ``ConnectionGuardHandler``.
final class ConnectionGuard: Sendable {
    private struct Entry {
        let channel: any Channel
        /// Since when it has been without a request in progress.
        var waitingSince: ContinuousClock.Instant
        var busy: Bool
    }

    private struct State {
        var nextID = 0
        var entries: [Int: Entry] = [:]
        var shed = 0
        var timedOut = 0
    }

    let limits: TicketlogServer.Configuration.Connections
    private let logger: Logger
    private let state = Mutex(State())

    init(_ limits: TicketlogServer.Configuration.Connections, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Open connections now.
    var openConnections: Int { state.withLock { $0.entries.count } }
    /// Connections closed to make room, or refused for want of it, since start.
    var shedConnections: Int { state.withLock { $0.shed } }
    /// Connections closed at a deadline since start.
    var timedOutConnections: Int { state.withLock { $0.timedOut } }

    /// Registers a new connection; its id, or `nil` when there is no room (close it).
    func open(_ channel: any Channel) -> Int? {
        let now = ContinuousClock.now
        var evicted: (any Channel)?
        let id: Int? = state.withLock { state in
            if state.entries.count >= limits.maximum {
                state.shed += 1
                guard
                    let oldest = state.entries.filter({ !$0.value.busy }).min(by: {
                        $0.value.waitingSince < $1.value.waitingSince
                    })
                else { return nil }
                evicted = oldest.value.channel
                state.entries[oldest.key] = nil
            }
            state.nextID += 1
            state.entries[state.nextID] = Entry(channel: channel, waitingSince: now, busy: false)
            return state.nextID
        }
        if let evicted {
            logger.debug(
                "Connection limit reached: closed the connection waiting longest",
                metadata: [
                    "ticketlog.connections.maximum": "\(limits.maximum)",
                    "ticketlog.client": "\(evicted.remoteAddress?.description ?? "-")",
                ])
            evicted.close(promise: nil)
        } else if id == nil {
            logger.warning(
                "Connection limit reached with every connection busy: refused a new one",
                metadata: [
                    "ticketlog.connections.maximum": "\(limits.maximum)"
                ])
        }
        return id
    }

    func close(_ id: Int) {
        state.withLock { _ = $0.entries.removeValue(forKey: id) }
    }

    /// Marks a connection as having a request in progress (not to be closed for room) or not.
    func setBusy(_ id: Int, _ busy: Bool) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.entries[id]?.busy = busy
            if !busy { state.entries[id]?.waitingSince = now }
        }
    }

    func timedOut(_ channel: any Channel, _ reason: String) {
        state.withLock { $0.timedOut += 1 }
        logger.debug(
            "Connection closed at its deadline",
            metadata: [
                "ticketlog.reason": "\(reason)", "ticketlog.client": "\(channel.remoteAddress?.description ?? "-")",
            ])
    }
}

/// One connection's part of the ``ConnectionGuard``: sits after the HTTP codec (it sees request
/// heads and ends and response ends) and puts a ``FirstByteWatcher`` at the front of the
/// pipeline (it sees the raw bytes, so a half-sent head is told apart from an idle connection).
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Phase {
        /// No byte of a request yet: a new connection, or a kept-alive one between requests.
        case waiting
        case readingHead
        case readingBody
        /// The request is read; its response is being made.
        case responding
    }

    private let connections: ConnectionGuard
    private var id: Int?
    private var phase = Phase.waiting
    /// Requests read whose response has not ended (more than one when a client pipelines).
    private var inFlight = 0
    /// When the current phase's time is up, and what to log then; `nil` while responding.
    private var deadline: (at: NIODeadline, reason: String)?
    /// The connection's one timer and when it fires. It is not moved for each phase (that was
    /// three timers scheduled and cancelled per request, 2.3% of a `GET`'s server time): it
    /// fires at the deadline or after ``checkInterval``, whichever is first, closes the
    /// connection if the deadline has passed and otherwise sets itself again. Every deadline is at
    /// least ``checkInterval`` after it is set, so the timer is never late for it.
    private var check: (scheduled: Scheduled<Void>, at: NIODeadline)?
    private let checkInterval: TimeAmount

    init(_ connections: ConnectionGuard) {
        self.connections = connections
        let limits = connections.limits
        let shortest = min(limits.requestHeadTimeout, limits.requestBodyTimeout, limits.idleTimeout)
        checkInterval = .nanoseconds(max(1_000_000, shortest.nanoseconds))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // On the WebSocket-upgrade channel the connection was registered at accept
        // (``AcceptGuard``): take its registration over.
        let early = try? context.pipeline.syncOperations.handler(type: AcceptGuard.self)
        guard let id = early.map({ $0.handOver() }) ?? connections.open(context.channel) else {
            context.close(promise: nil)
            return
        }
        if let early { context.pipeline.syncOperations.removeHandler(early, promise: nil) }
        self.id = id
        let watcher = FirstByteWatcher { [weak self] in
            self?.bytesArrived(context: context)
        }
        try? context.pipeline.syncOperations.addHandler(watcher, position: .first)
        // A new connection gets the head timeout: it was opened to send a request.
        arm(context, after: connections.limits.requestHeadTimeout, "no complete request head")
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.scheduled.cancel()
        check = nil
        deadline = nil
        if let id { connections.close(id) }
        id = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            inFlight += 1
            phase = .readingBody
            if let id { connections.setBusy(id, true) }
            arm(context, after: connections.limits.requestBodyTimeout, "the request body did not arrive in time")
        case .body:
            break
        case .end:
            phase = .responding
            deadline = nil
            // Answered before its body was read (an early 413): waiting again already.
            if inFlight == 0 { waitForNextRequest(context) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inFlight = max(0, inFlight - 1)
            if inFlight == 0, phase == .responding { waitForNextRequest(context) }
        }
        context.write(data, promise: promise)
    }

    /// Every request read is answered: the connection may be closed for room again, and gets
    /// the idle deadline until the next request's first byte.
    private func waitForNextRequest(_ context: ChannelHandlerContext) {
        phase = .waiting
        if let id { connections.setBusy(id, false) }
        arm(context, after: connections.limits.idleTimeout, "idle between requests")
    }

    /// The first raw bytes of a request arrived on a waiting connection: its head is due.
    fileprivate func bytesArrived(context: ChannelHandlerContext) {
        guard phase == .waiting else { return }
        phase = .readingHead
        arm(context, after: connections.limits.requestHeadTimeout, "no complete request head")
    }

    private func arm(_ context: ChannelHandlerContext, after timeout: Duration, _ reason: String) {
        let at = NIODeadline.now() + .nanoseconds(timeout.nanoseconds)
        deadline = (at, reason)
        // The timer fires no later than the deadline already, unless it is not running or the
        // deadline is shorter than the check interval (a timeout under a millisecond).
        if let check, check.at <= at { return }
        schedule(context, at: at)
    }

    private func schedule(_ context: ChannelHandlerContext, at: NIODeadline) {
        check?.scheduled.cancel()
        let scheduled = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [weak self] in
            guard let self else { return }
            self.fire(context)
        }
        check = (scheduled, at)
    }

    private func fire(_ context: ChannelHandlerContext) {
        check = nil
        guard id != nil else { return }  // removed meanwhile
        let now = NIODeadline.now()
        if let deadline, deadline.at <= now {
            connections.timedOut(context.channel, deadline.reason)
            context.close(promise: nil)
            return
        }
        schedule(context, at: min(deadline?.at ?? .distantFuture, now + checkInterval))
    }
}

/// Tells its owner when raw bytes arrive; passes them on untouched. First in the pipeline.
final class FirstByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let onBytes: () -> Void

    init(onBytes: @escaping () -> Void) {
        self.onBytes = onBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onBytes()
        context.fireChannelRead(data)
    }
}

/// The ``ConnectionGuard``'s hold on a connection of the WebSocket-upgrade channel before its
/// first request head is read: that channel adds ``ConnectionGuardHandler`` only once it has
/// decided not to upgrade, so without this a connection that never sends a head would be neither
/// counted nor timed out. Registered at accept, first in the pipeline, with the head deadline;
/// the handler adopts the registration on the HTTP path, and a WebSocket session marks it busy
/// (a request in progress for as long as it lasts) on the upgraded one.
final class AcceptGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let connections: ConnectionGuard
    private var id: Int?
    private var deadline: Scheduled<Void>?

    init(_ connections: ConnectionGuard) {
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let id = connections.open(context.channel) else {
            context.close(promise: nil)
            return
        }
        self.id = id
        let connections = self.connections
        deadline = context.eventLoop.assumeIsolated().scheduleTask(
            in: .nanoseconds(connections.limits.requestHeadTimeout.nanoseconds)
        ) {
            connections.timedOut(context.channel, "no complete request head")
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if let id { connections.close(id) }
        id = nil
    }

    /// The HTTP path takes the connection over: its registration, without the deadline.
    func handOver() -> Int? {
        deadline?.cancel()
        deadline = nil
        defer { id = nil }
        return id
    }

    /// Upgraded to a WebSocket: busy (never closed for room) until it closes.
    func upgraded() {
        deadline?.cancel()
        deadline = nil
        if let id { connections.setBusy(id, true) }
    }
}
