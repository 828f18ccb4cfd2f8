import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// `GET /api/chat/tickets/{id}/messages` keeps the pages it sent (``MessagePageCache``) under the
/// ticket's content mark and names them with it (`ETag`): a kept page must never be older than
/// what a read would answer, nor reach a caller the ticket is not theirs.
@Suite(.timeLimit(.minutes(3))) struct MessagePageTests {
    static let page = "/api/chat/tickets/a/messages?limit=50&direction=backwards"

    static func get(
        _ client: some TestClientProtocol, as token: String, ifNoneMatch: String? = nil, uri: String = page
    ) async throws -> TestResponse {
        var headers = ServerFixture.headers(token, json: false)
        if let ifNoneMatch { headers[.ifNoneMatch] = ifNoneMatch }
        return try await client.execute(uri: uri, method: .get, headers: headers)
    }

    /// `ticketlog_message_pages_kept` from `/metrics`.
    static func pagesKept(_ client: some TestClientProtocol) async throws -> Int? {
        let metrics = try await client.execute(uri: "/metrics", method: .get)
        return String(buffer: metrics.body).split(separator: "\n")
            .first { $0.hasPrefix("ticketlog_message_pages_kept ") }
            .flatMap { Double($0.split(separator: " ").last ?? "").map { Int($0) } }
    }

    static func texts(_ response: TestResponse) -> [String] {
        (response.json?["messages"] as? [[String: Any]])?.compactMap { $0["text"] as? String } ?? []
    }

    @Test(arguments: StoreKind.allCases)
    func aKeptPageFollowsEveryPostEditAndDelete(_ kind: StoreKind) async throws {
        let fixture = try await ServerFixture.make(kind)
        try await fixture.app.test(.router) { client in
            let kim = try await ServerFixture.token("kim", .creator)
            let first = try await Self.get(client, as: kim)
            let second = try await Self.get(client, as: kim)
            #expect(first.status == .ok)
            #expect(Self.texts(first) == ["first"])
            let tag = try #require(first.headers[.eTag])
            #expect(second.headers[.eTag] == tag)
            #expect(Data(buffer: second.body) == Data(buffer: first.body))

            // The same page for another caller allowed to read the ticket; none for a stranger.
            #expect(
                Self.texts(try await Self.get(client, as: try await ServerFixture.token("sam", .agent))) == ["first"])
            #expect(try await Self.get(client, as: try await ServerFixture.token("jo", .creator)).status == .notFound)

            // Each change moves the tag and shows in the next page.
            var seen: Set<String> = [tag]
            func expectPage(_ texts: [String]) async throws {
                let response = try await Self.get(client, as: kim)
                #expect(Self.texts(response) == texts)
                let tag = try #require(response.headers[.eTag])
                #expect(seen.insert(tag).inserted, "the tag \(tag) did not move")
            }
            let headers = ServerFixture.headers(kim)
            let post = try await client.execute(
                uri: "/api/chat/tickets/a/messages", method: .post, headers: headers,
                body: ByteBuffer(string: #"{"messageId":"m-2","text":"second"}"#))
            #expect(post.status == .created)
            try await expectPage(["second", "first"])
            let edit = try await client.execute(
                uri: "/api/chat/tickets/a/messages/m-2", method: .patch, headers: headers,
                body: ByteBuffer(string: #"{"text":"second, edited"}"#))
            #expect(edit.status == .ok)
            try await expectPage(["second, edited", "first"])
            let delete = try await client.execute(
                uri: "/api/chat/tickets/a/messages/m-1", method: .delete, headers: headers)
            #expect(delete.status == .ok)
            let afterDelete = try await Self.get(client, as: kim)
            let deleted = (afterDelete.json?["messages"] as? [[String: Any]])?.last
            #expect(deleted?["messageId"] as? String == "m-1")
            #expect(deleted?["deleted"] as? Bool == true)
            #expect(!seen.contains(afterDelete.headers[.eTag] ?? ""))

            // Another page of the same ticket is kept apart.
            let one = try await Self.get(client, as: kim, uri: "/api/chat/tickets/a/messages?limit=1")
            let only = (one.json?["messages"] as? [[String: Any]])?.map { $0["messageId"] as? String }
            #expect(only == ["m-1"])
        }
        let metrics = try await fixture.app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get)
        }
        let text = String(buffer: metrics.body)
        let hits = text.split(separator: "\n").first { $0.hasPrefix("ticketlog_message_page_hits ") }
        #expect(hits.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 2 } == true, "\(text)")
    }

    @Test func ifNoneMatchNamingThePageAnswers304WithoutIt() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.app.test(.router) { client in
            let kim = try await ServerFixture.token("kim", .creator)
            let tag = try #require(try await Self.get(client, as: kim).headers[.eTag])
            for field in [tag, "W/\(tag)", "\"other\", \(tag)", "*"] {
                let response = try await Self.get(client, as: kim, ifNoneMatch: field)
                #expect(response.status == .notModified, "If-None-Match: \(field)")
                #expect(response.body.readableBytes == 0)
                #expect(response.headers[.eTag] == tag)
            }
            let other = try await Self.get(client, as: kim, ifNoneMatch: "\"1-0\"")
            #expect(other.status == .ok)
            #expect(Self.texts(other) == ["first"])
            // Access is decided before the tag: a stranger gets 404 whatever they send.
            let stranger = try await Self.get(
                client, as: try await ServerFixture.token("jo", .creator), ifNoneMatch: tag)
            #expect(stranger.status == .notFound)
        }
    }

    /// An erasure appends no event to the ticket: the mark carries the log's erasures, so a page
    /// kept before shows the content erased after — also when another process erased it. And the
    /// pages kept before leave memory: at once after an erasure through the API, at the next
    /// request after one by another process.
    @Test(arguments: [false, true])
    func aPageKeptBeforeAnErasureIsNotServedAfterIt(byAnotherProcess: Bool) async throws {
        let key = MasterKey.generate()
        let (store, directory) = try await StoreKind.file.make { $0.masterKey = key }
        let a = StreamID.ticket("a")!
        let admin = Actor(id: "ada", role: .admin)
        let kim = Actor(id: "kim", role: .creator)
        try await store.execute(.open(title: "A", brand: "acme", creator: "kim"), on: a, by: admin)
        try await store.execute(
            .postMessage(messageID: "m-1", text: "my address is 1 Main St", attachments: []), on: a, by: kim)
        let router = try await TicketlogServer.router(store: store, configuration: ServerFixture.configuration)
        try await Application(router: router).test(.router) { client in
            let ada = try await ServerFixture.token("ada", .admin)
            let before = try await Self.get(client, as: ada)
            #expect(Self.texts(before) == ["my address is 1 Main St"])
            #expect(Self.texts(try await Self.get(client, as: ada)) == ["my address is 1 Main St"])
            let one = try await Self.get(client, as: ada, uri: "/api/chat/tickets/a/messages?limit=1")
            #expect(Self.texts(one) == ["my address is 1 Main St"])
            #expect(try await Self.pagesKept(client) == 2)
            if byAnotherProcess {
                var configuration = EventStore.Configuration()
                configuration.masterKey = key
                let other = try EventStore(path: directory.path("log.sqlite"), configuration: configuration)
                _ = try await other.erase(
                    .subject("kim"), requestedBy: "ada", reason: "GDPR request 2026-114", by: admin)
            } else {
                let erased = try await client.execute(
                    uri: "/api/admin/users/kim/content", method: .delete, headers: ServerFixture.headers(ada),
                    body: ByteBuffer(string: #"{"reason":"GDPR request 2026-114"}"#))
                #expect(erased.status == .ok)
                #expect(try await Self.pagesKept(client) == 0)
            }
            let after = try await Self.get(client, as: ada)
            // Only the page read after the erasure is kept (the other one, of `limit=1`, is gone).
            #expect(try await Self.pagesKept(client) == 1)
            #expect(after.status == .ok)
            #expect(!String(buffer: after.body).contains("Main St"))
            #expect(after.headers[.eTag] != before.headers[.eTag])
            #expect(Self.texts(try await Self.get(client, as: ada, ifNoneMatch: before.headers[.eTag])) == [""])
        }
    }

    /// Access is read at every request, on a file through connections of its own: an agent
    /// reassigned by another process loses the ticket at their next request, and a page kept
    /// while they had it does not reach them after.
    @Test func accessChangedByAnotherProcessHoldsAtTheNextRequest() async throws {
        let fixture = try await ServerFixture.make(.file)
        try await fixture.app.test(.router) { client in
            let sam = try await ServerFixture.token("sam", .agent)
            #expect(Self.texts(try await Self.get(client, as: sam)) == ["first"])
            #expect(Self.texts(try await Self.get(client, as: sam)) == ["first"])
            let other = try EventStore(path: fixture.directory.path("log.sqlite"))
            try await other.execute(.assign(agent: "lee"), on: .ticket("a")!, by: Actor(id: "ada", role: .admin))
            #expect(try await Self.get(client, as: sam).status == .notFound)
            let lee = try await Self.get(client, as: try await ServerFixture.token("lee", .agent))
            #expect(Self.texts(lee) == ["first"])
        }
    }

    /// While the message history is rebuilt alone, its pages may change under an unchanged
    /// ticket: they are neither kept nor tagged.
    @Test func noPageIsKeptWhileTheMessageHistoryIsBehindTheSummary() async throws {
        let fixture = try await ServerFixture.make(.file)
        let database = try DatabaseQueue(
            path: fixture.directory.path("log.sqlite"), configuration: EventStore.databaseConfiguration())
        try await database.write { db in
            try db.execute(
                sql: "UPDATE projection_checkpoints SET position = position - 1 WHERE name = 'message_history'")
        }
        try await fixture.app.test(.router) { client in
            let kim = try await ServerFixture.token("kim", .creator)
            let response = try await Self.get(client, as: kim)
            #expect(response.status == .ok)
            #expect(Self.texts(response) == ["first"])
            #expect(response.headers[.eTag] == nil)
        }
        try await database.write { db in
            try db.execute(
                sql: "UPDATE projection_checkpoints SET position = position + 1 WHERE name = 'message_history'")
        }
        try await fixture.app.test(.router) { client in
            let response = try await Self.get(client, as: try await ServerFixture.token("kim", .creator))
            #expect(response.headers[.eTag] != nil)
        }
    }

    @Test func theCacheKeepsNewerMarksAndDropsTheLeastRecentlyUsedPages() throws {
        let cache = MessagePageCache(capacity: 4_000 + 4 * MessagePageCache.entryOverhead)
        func key(_ ticket: String) -> MessagePageCache.Key {
            MessagePageCache.Key(stream: StreamID.ticket(ticket)!, cursor: nil, backwards: true, limit: 50)
        }
        func page(_ byte: UInt8) -> ByteBuffer { ByteBuffer(bytes: [UInt8](repeating: byte, count: 900)) }
        let old = TicketContentMark(lastPosition: 10, erasures: 0)
        let new = TicketContentMark(lastPosition: 12, erasures: 0)
        cache.keep(page(1), for: key("a"), mark: new)
        cache.keep(page(2), for: key("a"), mark: old)
        #expect(cache.page(key("a"), mark: new) == page(1))
        #expect(cache.page(key("a"), mark: old) == nil)
        cache.keep(page(3), for: key("a"), mark: TicketContentMark(lastPosition: 13, erasures: 0))
        #expect(cache.page(key("a"), mark: new) == nil)
        cache.keep(page(4), for: key("x"), mark: nil)
        #expect(cache.page(key("x"), mark: new) == nil)
        // Five pages of 900 bytes (and their overhead) over the capacity of four: down to three
        // quarters, least recently used first ("a", then "c"; "b" was read since).
        for ticket in ["b", "c", "d"] { cache.keep(page(5), for: key(ticket), mark: old) }
        _ = cache.page(key("b"), mark: old)
        cache.keep(page(6), for: key("e"), mark: old)
        #expect(cache.statistics.pages == 3)
        #expect(cache.statistics.bytes == 3 * (900 + MessagePageCache.entryOverhead))
        #expect(cache.page(key("c"), mark: old) == nil)
        #expect(cache.page(key("b"), mark: old) == page(5))
        #expect(cache.page(key("e"), mark: old) == page(6))

        // A mark showing a newer erasure drops every page kept before it; a page read before
        // that erasure is not kept after it.
        let erased = TicketContentMark(lastPosition: 12, erasures: 2)
        #expect(cache.page(key("zz"), mark: erased) == nil)
        #expect(cache.statistics.pages == 0)
        cache.keep(page(7), for: key("b"), mark: old)
        #expect(cache.statistics.pages == 0)
        cache.keep(page(7), for: key("b"), mark: erased)
        #expect(cache.page(key("b"), mark: erased) == page(7))
        cache.removeAll()
        #expect(cache.statistics.pages == 0 && cache.statistics.bytes == 0)

        // A flood of empty pages (a cursor past the end, each a new key) stays within the bound.
        for cursor in 0..<10_000 {
            cache.keep(
                ByteBuffer(string: #"{"messages":[]}"#),
                for: MessagePageCache.Key(
                    stream: StreamID.ticket("a")!, cursor: Int64(cursor), backwards: false, limit: 50),
                mark: old)
        }
        #expect(cache.statistics.bytes <= cache.capacity)
        #expect(cache.statistics.pages < 30)
    }
}
