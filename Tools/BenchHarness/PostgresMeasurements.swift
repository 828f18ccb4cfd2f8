import Foundation
import Ticketlog
import TicketlogPostgres
import ToolSupport

/// Issue 19's PostgreSQL rows, on a throw-away cluster the bench starts
/// (`Tools/Postgres/cluster.sh`), each measurement in a database of its own, against Python
/// `eventsourcing[postgres]`'s application recorder on the same server and corpus. One run alone:
/// `ticketlog-bench --child postgres-append --database postgres://… --events N` (or
/// `postgres-append-events`, `postgres-concurrent`) on an empty database.
enum PostgresMeasurements {
    struct Rows {
        /// Batched append, 1,000 events per transaction, every projection in the transaction.
        var batched = Rate(events: 0, seconds: 0)
        /// The same, events only (projections caught up afterwards).
        var eventsOnly = Rate(events: 0, seconds: 0)
        /// 16 tasks appending one event each time through one log (one connection).
        var concurrent = Rate(events: 0, seconds: 0)
        /// The peer's `key=value` line: `rate`, `first10`, `last10`, `replay_rate`.
        var python: [String: Double] = [:]
        /// The server's version line.
        var server = ""
        /// `POST …/messages` served by one node, then by three sharing the log.
        var nodes: HTTPLoad.Nodes?
    }

    /// What the HTTP row needs: the `ticketlog` executable, `wrk`, a work directory, seconds.
    struct HTTP {
        var server: String
        var wrk: String
        var work: String
        var seconds: Int
    }

    /// Starts a cluster in a temporary directory, runs every row, stops it and removes the
    /// directory (whatever happens).
    static func measure(
        cluster: String, corpus: String, python: String, peer: String, events: Int, singles: Int, http: HTTP?,
        step: (String) -> Void
    ) async throws -> Rows {
        // Under /tmp, not `work`: run as root, the server runs as `nobody`, who may not enter
        // the checkout's directories.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ticketlog-bench-pg-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func url(_ line: String) throws -> String {
            guard let url = line.split(separator: "\n").last.map(String.init), url.hasPrefix("postgres://") else {
                throw ToolError("cluster.sh printed no URL: \(line)")
            }
            return url
        }
        let server = try url(try LocalServer.run(cluster, ["start", directory]))
        defer { _ = try? LocalServer.run(cluster, ["stop", directory]) }
        func database(_ name: String) throws -> String {
            try url(try LocalServer.run(cluster, ["createdb", directory, name]))
        }
        var rows = Rows()
        let version = try await EventStore.using(try PostgresLocation(url: try database("bench_version"))) {
            try await $0.serverVersion()
        }
        rows.server = version
        step("\(version): Python eventsourcing[postgres], batched append, then replay")
        rows.python = try Baseline.run(python, [peer, corpus, server])
        step("PostgreSQL: ticketlog batched append (1000 per transaction, projections inline)")
        rows.batched = try await batchedAppend(events: events, url: try database("bench_batched"))
        step("PostgreSQL: ticketlog events-only append")
        rows.eventsOnly = try await batchedAppend(
            events: events, url: try database("bench_events"), inlineProjections: false)
        step("PostgreSQL: ticketlog 16 concurrent single appends (\(singles) events, one connection)")
        rows.concurrent = try await concurrentSingles(events: singles, url: try database("bench_concurrent"))
        if let http {
            step(
                "PostgreSQL: POST …/messages on one serve node, then on three (wrk, 16 connections, \(http.seconds) s each)"
            )
            rows.nodes = try await HTTPLoad.measureNodes(
                server: http.server, wrk: http.wrk, work: http.work, url: try database("bench_http"),
                seconds: http.seconds)
        }
        return rows
    }

    static func batchedAppend(events: Int, url: String, inlineProjections: Bool = true) async throws -> Rate {
        try await EventStore.using(try PostgresLocation(url: url), configuration: configuration(inlineProjections)) {
            log in
            try await Measurements.timedBatches(events: events) { appends in
                for result in await log.append(appends) { _ = try result.get() }
            }
        }
    }

    /// 16 tasks appending one event per append through one log: what one server node does
    /// with 16 requests at once.
    static func concurrentSingles(events: Int, url: String) async throws -> Rate {
        try await EventStore.using(try PostgresLocation(url: url), configuration: configuration(true)) { log in
            try await Measurements.sixteenWriters(events: events) { _ = try await log.append([$1], to: $0) }
        }
    }

    private static func configuration(_ inlineProjections: Bool) -> EventStore.Configuration {
        var configuration = EventStore.Configuration()
        configuration.dictionaryTrainingThreshold = nil
        configuration.inlineProjections = inlineProjections
        return configuration
    }
}
