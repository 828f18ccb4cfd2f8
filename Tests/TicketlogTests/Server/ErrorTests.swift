import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// Bad requests get the documented status and JSON error, and the log stays as it was.
@Suite(.timeLimit(.minutes(10))) struct ErrorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var method: HTTPRequest.Method
        var path: String
        var body: String?
        var contentType: String? = "application/json"
        var status: HTTPResponse.Status
        var code: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "malformed JSON", method: .post, path: "/api/chat/tickets/a/messages", body: #"{"text": "#,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "missing field", method: .post, path: "/api/chat/tickets/a/messages", body: #"{"txt":"hi"}"#,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "wrong type", method: .post, path: "/api/chat/tickets/a/status", body: #"{"status":42}"#,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "empty text", method: .post, path: "/api/chat/tickets/a/messages", body: #"{"text":"  "}"#,
            status: .badRequest, code: "invalid_event"),
        Case(
            name: "unknown status", method: .post, path: "/api/chat/tickets/a/status", body: #"{"status":"done-ish"}"#,
            status: .badRequest, code: "invalid_event"),
        Case(
            name: "same status", method: .post, path: "/api/chat/tickets/a/status", body: #"{"status":"open"}"#,
            status: .unprocessableContent, code: "rejected"),
        Case(
            name: "wrong content type", method: .post, path: "/api/chat/tickets/a/messages", body: "text=hi",
            contentType: "application/x-www-form-urlencoded", status: .unsupportedMediaType,
            code: "unsupported_media_type"),
        Case(
            name: "body too large", method: .post, path: "/api/chat/tickets/a/messages",
            body: #"{"text":""# + String(repeating: "x", count: 5_000) + #""}"#, status: .contentTooLarge,
            code: "too_large"),
        Case(
            name: "invalid ticket id", method: .post, path: "/api/chat/tickets/a%20b/join", body: nil,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "unknown ticket", method: .post, path: "/api/chat/tickets/zzz/join", body: nil, status: .notFound,
            code: "not_found"),
        Case(
            name: "unknown message", method: .patch, path: "/api/chat/tickets/a/messages/m-404", body: #"{"text":"x"}"#,
            status: .notFound, code: "not_found"),
        Case(
            name: "unknown route", method: .get, path: "/api/chat/nothing-here", body: nil, status: .notFound,
            code: "not_found"),
        Case(
            name: "stale expected version", method: .post, path: "/api/chat/tickets/a/messages",
            body: #"{"text":"hi","expectedVersion":2}"#, status: .conflict, code: "version_conflict"),
        Case(
            name: "duplicate message id", method: .post, path: "/api/chat/tickets/a/messages",
            body: #"{"text":"hi","messageId":"m-1"}"#, status: .conflict, code: "version_conflict"),
        Case(
            name: "existing ticket", method: .post, path: "/api/chat/tickets",
            body: #"{"ticketId":"a","title":"t","brand":"acme","creator":"kim"}"#, status: .conflict,
            code: "version_conflict"),
        Case(
            name: "negative limit", method: .get, path: "/api/chat/tickets/a/messages?limit=-5", body: nil,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "huge limit", method: .get, path: "/api/chat/tickets/a/messages?limit=99999999999999999999",
            body: nil, status: .badRequest, code: "bad_request"),
        Case(
            name: "bad direction", method: .get, path: "/api/chat/tickets/a/messages?direction=sideways", body: nil,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "bad point in time", method: .get, path: "/api/chat/tickets/a/state?at=yesterday", body: nil,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "negative message count", method: .get, path: "/api/chat/tickets/a/state?messages=-1", body: nil,
            status: .badRequest, code: "bad_request"),
        Case(
            name: "bad channel id", method: .get, path: "/api/chat/channels/nope", body: nil, status: .badRequest,
            code: "bad_request"),
    ]

    @Test(arguments: cases, StoreKind.backends)
    func answeredWithTheDocumentedError(_ testCase: Case, _ kind: StoreKind) async throws {
        let fixture = try await ServerFixture.make(kind)
        let token = try await ServerFixture.token("ada", .admin)
        let before = try await fixture.store.headPosition()
        try await fixture.app.test(.live) { client in
            var headers = ServerFixture.headers(token, json: false)
            if let contentType = testCase.contentType { headers[.contentType] = contentType }
            let response = try await client.execute(
                uri: testCase.path, method: testCase.method, headers: headers,
                body: testCase.body.map { ByteBuffer(string: $0) })
            #expect(response.status == testCase.status, "\(String(buffer: response.body))")
            #expect(response.errorCode == testCase.code, "\(String(buffer: response.body))")
            let message = (response.json?["error"] as? [String: Any])?["message"] as? String
            #expect(message?.isEmpty == false)
        }
        #expect(try await fixture.store.headPosition() == before)
    }

    /// Every answered request is one `info` line: method, path without its query (a feed's
    /// token may be there), the status the caller got — an error's too — and the request id the
    /// response carries.
    @Test func everyAnsweredRequestIsOneAccessLine() async throws {
        let log = LogRecorder()
        let fixture = try await ServerFixture.make(logger: log.logger)
        let token = try await ServerFixture.token("ada", .admin)
        let ids = try await fixture.app.test(.live) { client in
            var ids: [String] = []
            for (method, path, body) in [
                (HTTPRequest.Method.post, "/api/chat/tickets/a/messages", #"{"text":"hi"}"#),
                (.get, "/api/chat/tickets/a/messages?limit=2&token=secret-in-query", nil),
                (.post, "/api/chat/tickets/zzz/join", nil),
            ] {
                let response = try await client.execute(
                    uri: path, method: method, headers: ServerFixture.headers(token),
                    body: body.map { ByteBuffer(string: $0) })
                ids.append(try #require(response.headers[ErrorMiddleware.requestIDHeader]))
            }
            return ids
        }
        let lines = log.messages.filter { $0.hasPrefix("info ") && $0.contains(" ms ") }
        #expect(lines.count == 3, "\(log.messages)")
        let expected = [
            "POST /api/chat/tickets/a/messages 201 ", "GET /api/chat/tickets/a/messages 200 ",
            "POST /api/chat/tickets/zzz/join 404 ",
        ]
        for (line, (start, id)) in zip(lines, zip(expected, ids)) {
            #expect(line.hasPrefix("info \(start)"), "\(line)")
            #expect(line.hasSuffix("ticketlog.request=\(id)"), "\(line)")
            #expect(!line.contains("secret-in-query"))
        }
    }

    @Test(arguments: StoreKind.backends) func aConversationOverHTTP(_ kind: StoreKind) async throws {
        let fixture = try await ServerFixture.make(kind)
        let admin = try await ServerFixture.token("ada", .admin)
        let creator = try await ServerFixture.token("kim", .creator)
        try await fixture.app.test(.live) { client in
            func call(_ method: HTTPRequest.Method, _ path: String, _ token: String, _ body: String? = nil) async throws
                -> TestResponse
            {
                try await client.execute(
                    uri: path, method: method, headers: ServerFixture.headers(token),
                    body: body.map { ByteBuffer(string: $0) })
            }
            let joined = try await call(.post, "/api/chat/tickets/a/join", admin)
            #expect(joined.json?["channelId"] as? String == "ticket-a")
            #expect(joined.json?["version"] as? Int == 6)
            let again = try await call(.post, "/api/chat/tickets/a/join", admin)
            #expect(again.json?["version"] as? Int == 6, "a second join appends nothing")
            let posted = try await call(
                .post, "/api/chat/tickets/a/messages", creator, #"{"messageId":"m-2","text":"draft ready"}"#)
            #expect(posted.status == .created)
            #expect((posted.json?["message"] as? [String: Any])?["text"] as? String == "draft ready")
            let edited = try await call(
                .patch, "/api/chat/tickets/a/messages/m-2", creator, #"{"text":"draft 2 ready"}"#)
            #expect((edited.json?["message"] as? [String: Any])?["edits"] as? Int == 1)
            let page = try await call(.get, "/api/chat/tickets/a/messages?limit=1", creator)
            #expect((page.json?["messages"] as? [[String: Any]])?.first?["messageId"] as? String == "m-1")
            let cursor = try #require(page.json?["nextCursor"] as? Int)
            let next = try await call(.get, "/api/chat/tickets/a/messages?limit=5&cursor=\(cursor)", creator)
            #expect((next.json?["messages"] as? [[String: Any]])?.map { $0["messageId"] as? String } == ["m-2"])
            #expect(next.json?["nextCursor"] == nil)
            #expect(
                try await call(.post, "/api/chat/tickets/a/status", admin, #"{"status":"in_review","note":"check"}"#)
                    .status == .ok)
            let deliverable = try await call(
                .post, "/api/chat/tickets/a/deliverables", creator,
                #"{"title":"Cut 1","url":"https://cdn.example.com/1.mp4","kind":"video"}"#)
            #expect(deliverable.status == .created)
            let info = try await call(.get, "/api/chat/channels/ticket-a", creator)
            #expect((info.json?["channel"] as? [String: Any])?["status"] as? String == "in_review")
            #expect((info.json?["lastMessage"] as? [String: Any])?["text"] as? String == "draft 2 ready")
            let audit = try await call(.get, "/api/chat/tickets/a/audit", admin)
            let summaries = (audit.json?["entries"] as? [[String: Any]])?.compactMap { $0["summary"] as? String } ?? []
            #expect(
                summaries.last
                    == "kim (creator) pushed video deliverable \((deliverable.json?["deliverable"] as? [String: Any])?["deliverableId"] as? String ?? "?") \"Cut 1\": https://cdn.example.com/1.mp4"
            )
            let past = try await call(.get, "/api/chat/tickets/a/state?at=5", admin)
            #expect(past.json?["status"] as? String == "open")
            #expect((past.json?["messages"] as? [[String: Any]])?.count == 1)
            #expect(past.json?["messagesOmitted"] as? Int == 0)
            // Only the last messages when asked: the rest counted, nothing else changed.
            let whole = try await call(.get, "/api/chat/tickets/a/state", admin)
            let all = try #require(whole.json?["messages"] as? [[String: Any]])
            #expect(all.count >= 2)
            let last = try await call(.get, "/api/chat/tickets/a/state?messages=1", admin)
            let kept = try #require(last.json?["messages"] as? [[String: Any]])
            #expect(kept.map { $0["messageId"] as? String } == [all.last?["messageId"] as? String])
            #expect(last.json?["messagesOmitted"] as? Int == all.count - 1)
            #expect(last.json?["status"] as? String == whole.json?["status"] as? String)
            let none = try await call(.get, "/api/chat/tickets/a/state?messages=0", admin)
            #expect((none.json?["messages"] as? [[String: Any]])?.isEmpty == true)
            #expect(none.json?["messagesOmitted"] as? Int == all.count)
            #expect(try await call(.post, "/api/chat/tickets/a/leave", creator).status == .ok)
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.json?["status"] as? String == "ok")
        }
        #expect(try await fixture.store.verify().isValid)
    }
}

extension ErrorTests {
    /// A log that cannot be written (here: opened read-only) answers writes with 503 and a
    /// message that does not leak SQLite internals; reads keep working.
    @Test func aStorageFailureIs503() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        do {
            let store = try EventStore(path: path)
            try await store.execute(
                .open(title: "A", brand: "acme", creator: "kim"), on: .ticket("a")!, by: Actor(id: "ada", role: .admin))
        }
        var configuration = EventStore.Configuration()
        configuration.readOnly = true
        let store = try EventStore(path: path, configuration: configuration)
        let app = Application(
            router: try await TicketlogServer.router(store: store, configuration: ServerFixture.configuration))
        let admin = try await ServerFixture.token("ada", .admin)
        try await app.test(.router) { client in
            let write = try await client.execute(
                uri: "/api/chat/tickets/a/messages", method: .post, headers: ServerFixture.headers(admin),
                body: ByteBuffer(string: #"{"text":"hello"}"#))
            #expect(write.status == .serviceUnavailable)
            #expect(write.errorCode == "storage_failure")
            let message = (write.json?["error"] as? [String: Any])?["message"] as? String
            #expect(message == "the event log is unavailable; try again later")
            let read = try await client.execute(
                uri: "/api/chat/tickets/a/audit", method: .get, headers: ServerFixture.headers(admin))
            #expect(read.status == .ok)
        }
        #expect(try await store.headPosition() == 1)
    }
}
