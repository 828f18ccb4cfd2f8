import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

@Suite struct FeedAndLimitTests {
    /// Reads the event feed with curl (a real SSE client on loopback) for `seconds`, while
    /// `during` appends; returns the `id:` lines seen.
    static func feed(port: Int, token: String, query: String, lastEventID: String? = nil, seconds: Int, during: () async throws -> Void) async throws -> (ids: [Int64], output: String) {
        var arguments = ["-s", "-N", "--max-time", "\(seconds)", "-H", "Authorization: Bearer \(token)"]
        if let lastEventID { arguments += ["-H", "Last-Event-ID: \(lastEventID)"] }
        arguments.append("http://127.0.0.1:\(port)/api/events\(query)")
        // curl runs while `during` appends; it is waited for on a thread of its own, because the
        // server under test shares this process's few cooperative threads (blocking one of them
        // for the whole read once starved the server: the live events came too late).
        async let curl = awaitProcess(URL(fileURLWithPath: "/usr/bin/curl"), arguments)
        try await Task.sleep(for: .milliseconds(500))
        try await during()
        let text = try await curl.stdout
        let ids = text.split(separator: "\n").compactMap { line in line.hasPrefix("id: ") ? Int64(line.dropFirst(4)) : nil }
        return (ids, text)
    }

    @Test func theFeedCatchesUpThenFollowsLiveAndResumes() async throws {
        let fixture = try await ServerFixture.make()
        let admin = try await ServerFixture.token("ada", .admin)
        try await fixture.app.test(.live) { client in
            let port = try #require(client.port)
            // Seconds of reading generous enough for a loaded 2-core CI machine (it once saw
            // only the catch-up within 3 s while the whole suite ran).
            let first = try await Self.feed(port: port, token: admin, query: "?after=4", seconds: 6) {
                try await fixture.store.execute(.changeStatus(to: "in_review", note: nil), on: .ticket("a")!, by: Actor(id: "ada", role: .admin))
                try await fixture.store.execute(.join(user: "jo", role: .creator), on: .ticket("b")!, by: Actor(id: "jo", role: .creator))
            }
            #expect(first.ids == [5, 6, 7, 8], "\(first.output)")
            #expect(first.output.contains("event: status.changed"))
            let data = try #require(first.output.split(separator: "\n").first { $0.hasPrefix("data: ") && $0.contains("\"position\":7") })
            let event = try JSONDecoder().decode(RecordedEvent.self, from: Data(data.dropFirst(6).utf8))
            #expect(event.payload == .statusChanged(StatusChanged(from: "open", to: "in_review")))

            // A reconnecting client sends Last-Event-ID and misses nothing, repeats nothing.
            let resumed = try await Self.feed(port: port, token: admin, query: "?after=1", lastEventID: "6", seconds: 2) {}
            #expect(resumed.ids == [7, 8])

            let creator = try await ServerFixture.token("kim", .creator)
            let refused = try await client.execute(uri: "/api/events", method: .get, headers: ServerFixture.headers(creator))
            #expect(refused.status == .forbidden)
            let bad = try await client.execute(uri: "/api/events?after=-3", method: .get, headers: ServerFixture.headers(admin))
            #expect(bad.status == .badRequest)
        }
    }

    @Test func aCallerBeyondTheBurstGets429WithRetryAfter() async throws {
        let store = try EventStore.inMemory()
        var configuration = ServerFixture.configuration
        configuration.rateLimit = .init(perSecond: 0.01, burst: 3)
        let app = Application(router: try await TicketlogServer.router(store: store, configuration: configuration))
        let kim = try await ServerFixture.token("kim", .creator)
        let jo = try await ServerFixture.token("jo", .creator)
        try await app.test(.router) { client in
            for _ in 0..<3 {
                #expect(try await client.execute(uri: "/api/chat/channels", method: .get, headers: ServerFixture.headers(kim)).status == .ok)
            }
            let limited = try await client.execute(uri: "/api/chat/channels", method: .get, headers: ServerFixture.headers(kim))
            #expect(limited.status == .tooManyRequests)
            #expect(limited.errorCode == "rate_limited")
            // One token per 100 s: whatever the test's own pace, the wait is close to 100 s.
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap { Int($0) })
            #expect((90...100).contains(retryAfter), "Retry-After: \(retryAfter)")
            // Buckets are per caller.
            #expect(try await client.execute(uri: "/api/chat/channels", method: .get, headers: ServerFixture.headers(jo)).status == .ok)
        }
    }

    @Test func everyResponseCarriesARequestID() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.app.test(.router) { client in
            let ok = try await client.execute(uri: "/healthz", method: .get)
            let failed = try await client.execute(uri: "/api/chat/channels", method: .get)
            let ids = [ok, failed].compactMap { $0.headers[ErrorMiddleware.requestIDHeader] }
            #expect(ids.count == 2)
            #expect(Set(ids).count == 2)
        }
    }
}

@Suite struct MallocTests {
    @Test func arenasAreLimitedOnlyToAPositiveCountAndTheHeapFigureFollowsAllocations() throws {
        #expect(!Malloc.limitArenas(to: 0))
        #expect(!Malloc.limitArenas(to: -1))
        // A limit above glibc's own (8 per core) changes nothing for the other tests here.
        #expect(Malloc.limitArenas(to: 1_024))
        let before = try #require(Malloc.bytesInUse)
        let block = UnsafeMutableRawPointer.allocate(byteCount: 64 << 20, alignment: 16)
        defer { block.deallocate() }
        let during = try #require(Malloc.bytesInUse)
        // Other tests allocate at the same time, so only "at least most of the block".
        #expect(during - before > 48 << 20, "before \(before), during \(during)")
    }
}

@Suite struct MetricsTests {
    @Test func requestsAreCountedByRouteAndStatus() async throws {
        let fixture = try await ServerFixture.make()
        let admin = try await ServerFixture.token("ada", .admin)
        try await fixture.app.test(.router) { client in
            for _ in 0..<3 {
                _ = try await client.execute(uri: "/api/chat/tickets/a/audit", method: .get, headers: ServerFixture.headers(admin))
            }
            _ = try await client.execute(uri: "/api/chat/tickets/b/audit", method: .get, headers: ServerFixture.headers(admin))
            _ = try await client.execute(uri: "/api/chat/channels", method: .get)
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            let text = String(buffer: response.body)
            let lines = text.split(separator: "\n").map(String.init)
            func value(_ prefix: String) -> Double? {
                lines.first { $0.hasPrefix(prefix) }.flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            // Both tickets' requests count under the one route pattern.
            #expect(value(#"ticketlog_http_requests_total{method="GET",route="/api/chat/tickets/{ticketId}/audit",status="200"}"#) == 4, "\(text)")
            #expect(value(#"ticketlog_http_requests_total{method="GET",route="/api/chat/channels",status="401"}"#) == 1)
            #expect(value("ticketlog_log_events") == 6)
            #expect(value("ticketlog_log_tickets") == 2)
            // SQLite's share and the whole process's, so a dashboard can tell them apart.
            let sqlite = try #require(value("ticketlog_sqlite_memory_bytes"))
            let resident = try #require(value("process_resident_memory_bytes"))
            #expect(sqlite > 0 && resident > sqlite, "\(text)")
            let heap = try #require(value("process_heap_in_use_bytes"))
            #expect(heap > sqlite && heap < resident, "\(text)")
            #expect(text.contains("ticketlog_http_request_duration_seconds_bucket"), "\(text)")
        }
    }
}
