import Foundation
import Hummingbird
import Metrics
import Prometheus
import Synchronization
import Ticketlog

/// Request counts and durations per route and status, through swift-metrics with a Prometheus
/// factory of this server's own (no process-wide bootstrap, so several servers, e.g. in tests,
/// keep separate numbers), exposed at `/metrics` in the Prometheus text format along with the
/// log's size.
struct ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    let connections: ConnectionGuard?
    let feeds: FeedLimiter?
    let pages: MessagePageCache?
    /// Each (method, route, status)'s counter and timer, made once: making them per request went
    /// through the registry's lock, sorted dimensions and label checks (1.6% of a `GET`'s server
    /// time). Bounded: routes are the router's templates (or `unmatched`), methods the parser's
    /// known ones, statuses three digits.
    private let handles = HandleCache()

    private final class HandleCache: Sendable {
        struct Key: Hashable {
            var method: String
            var route: String
            var status: Int
        }

        let byKey = Mutex<[Key: (requests: Metrics.Counter, duration: Metrics.Timer)]>([:])
    }

    init(connections: ConnectionGuard? = nil, feeds: FeedLimiter? = nil, pages: MessagePageCache? = nil) {
        self.connections = connections
        self.feeds = feeds
        self.pages = pages
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
    }

    func record(method: HTTPRequest.Method, route: String, status: Int, duration: Duration) {
        let key = HandleCache.Key(method: method.rawValue, route: route, status: status)
        let (requests, timer) = handles.byKey.withLock { handles in
            if let found = handles[key] { return found }
            let made = (
                Counter(
                    label: "ticketlog_http_requests_total",
                    dimensions: [("method", key.method), ("route", route), ("status", String(status))],
                    factory: factory),
                Timer(
                    label: "ticketlog_http_request_duration_seconds",
                    dimensions: [("method", key.method), ("route", route)], factory: factory)
            )
            handles[key] = made
            return made
        }
        requests.increment()
        timer.recordNanoseconds(duration.nanoseconds)
    }

    /// Adds one to a counter of an extension's.
    func count(_ label: String, dimensions: [(String, String)]) {
        Counter(label: label, dimensions: dimensions, factory: factory).increment()
    }

    /// The Prometheus text of everything recorded, plus, as they are now: the log's head and
    /// ticket count, the bytes SQLite holds, the process's resident memory (where `/proc` tells
    /// it) and its heap in use (with glibc), so memory growth can be told apart from SQLite's
    /// caches filling and from malloc keeping freed memory.
    func exposition(store: EventStore) async throws -> String {
        let events = try await store.headPosition()
        let tickets = try await store.ticketCount()
        Gauge(label: "ticketlog_log_events", factory: factory).record(events)
        Gauge(label: "ticketlog_log_tickets", factory: factory).record(tickets)
        Gauge(label: "ticketlog_sqlite_memory_bytes", factory: factory).record(EventStore.sqliteMemoryInUse)
        if let resident = Self.residentBytes() {
            Gauge(label: "process_resident_memory_bytes", factory: factory).record(resident)
        }
        if let connections {
            Gauge(label: "ticketlog_connections_open", factory: factory).record(connections.openConnections)
            Gauge(label: "ticketlog_connections_shed", factory: factory).record(connections.shedConnections)
            Gauge(label: "ticketlog_connections_timed_out", factory: factory).record(connections.timedOutConnections)
        }
        if let feeds {
            Gauge(label: "ticketlog_event_feeds_open", factory: factory).record(feeds.openFeeds)
        }
        if let pages {
            let statistics = pages.statistics
            Gauge(label: "ticketlog_message_pages_kept", factory: factory).record(statistics.pages)
            Gauge(label: "ticketlog_message_pages_kept_bytes", factory: factory).record(statistics.bytes)
            Gauge(label: "ticketlog_message_page_hits", factory: factory).record(statistics.hits)
            Gauge(label: "ticketlog_message_page_misses", factory: factory).record(statistics.misses)
        }
        if let heap = Malloc.bytesInUse {
            Gauge(label: "process_heap_in_use_bytes", factory: factory).record(heap)
        }
        return registry.emitToString()
    }

    /// The second field of `/proc/self/statm` (resident pages); `nil` without `/proc`.
    private static func residentBytes() -> Int64? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return nil }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
