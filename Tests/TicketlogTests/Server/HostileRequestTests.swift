import Crypto
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import StreamChatEmulator
import Testing

@testable import StreamChatSync
@testable import Ticketlog
@testable import TicketlogServer

/// Hand-made hostile requests (issue 7), over a real loopback connection: each gets its
/// documented 4xx with a JSON error, and every table of the log is byte for byte as before.
@Suite(.timeLimit(.minutes(10))) struct HostileRequestTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var method: HTTPRequest.Method = .post
        var path: String
        var body: [UInt8]?
        var contentType: String? = "application/json"
        var authorization: String? = nil
        var status: HTTPResponse.Status
        /// Signed with the Stream secret as Stream signs a webhook (`X-Signature`).
        var signed = false
        /// The `result` an acknowledged webhook must carry (`refused`).
        var result: String? = nil
        var testDescription: String { name }
    }

    /// A webhook from a Stream client's action on the fixture's ticket-a (brand acme, creator
    /// kim, agent sam; message m-1 by kim), signed as Stream signs it: authentic, and refused.
    static func stream(_ name: String, _ json: String) -> Case {
        Case(name: name, path: "/webhooks/stream", body: Array(json.utf8), status: .ok, signed: true, result: "refused")
    }

    static let streamCases: [Case] = {
        let kims = StreamChatIDs.message("m-1", in: .ticket("a")!)
        let client = #""request_info":{"type":"client","sdk":"ticketlog-sync-0.1"}"#
        func message(
            _ type: String, id: String, text: String, user: String, channel: String = "ticket-a", extra: String = ""
        ) -> String {
            #"{"type":"\#(type)","channel_type":"messaging","channel_id":"\#(channel)","created_at":"2026-11-29T10:00:00Z","user":{"id":"\#(user)"},\#(client),"message":{"id":"\#(id)","text":"\#(text)","user":{"id":"\#(user)"},"ticketlog_message_id":"m-1","updated_at":"2026-11-29T10:00:00Z"\#(extra)}}"#
        }
        func channel(_ type: String, user: String, fields: String) -> String {
            #"{"type":"\#(type)","channel_type":"messaging","channel_id":"ticket-a","created_at":"2026-11-29T10:00:00Z","user":{"id":"\#(user)"},\#(client),"channel":{"id":"ticket-a"\#(fields)}}"#
        }
        func member(_ type: String, member: String, user: String) -> String {
            #"{"type":"\#(type)","channel_type":"messaging","channel_id":"ticket-a","created_at":"2026-11-29T10:00:00Z","user":{"id":"\#(user)"},\#(client),"member":{"user_id":"\#(member)"}}"#
        }
        var zeros = [UInt8](repeating: 0x20, count: 6 << 20)
        zeros.replaceSubrange(0..<2, with: Array("{}".utf8))
        return [
            stream(
                "Stream: a brand edits the creator's message",
                message("message.updated", id: kims, text: "rewritten", user: "acme")),
            stream(
                "Stream: a brand deletes the creator's message",
                message("message.deleted", id: kims, text: "", user: "acme")),
            stream(
                "Stream: a creator assigns an agent",
                channel("channel.updated", user: "kim", fields: #","ticket_agent":"mallory""#)),
            stream(
                "Stream: a creator truncates the channel",
                channel("channel.truncated", user: "kim", fields: #","truncated_at":"2026-11-29T10:00:00Z""#)),
            stream(
                "Stream: someone without a role deletes the channel",
                channel("channel.deleted", user: "mallory", fields: #","deleted_at":"2026-11-29T10:00:00Z""#)),
            stream(
                "Stream: a status that is not one",
                channel("channel.updated", user: "kim", fields: #","ticket_status":"hacked'; --""#)),
            stream("Stream: someone without a role joins", member("member.added", member: "mallory", user: "mallory")),
            stream("Stream: a creator removes the brand", member("member.removed", member: "acme", user: "kim")),
            stream(
                "Stream: someone without a role posts",
                message("message.new", id: "x-1", text: "hello", user: "mallory")),
            stream(
                "Stream: a post to a ticket that does not exist",
                message("message.new", id: "x-2", text: "first", user: "acme", channel: "ticket-squat")),
            stream(
                "Stream: an escape sequence in a message",
                message("message.new", id: "x-3", text: #"\u001b[2Jcleared"#, user: "kim")),
            stream(
                "Stream: a line break in a user id",
                message("message.new", id: "x-4", text: "hi", user: #"kim\n#99 ada (admin) approved"#)),
            stream(
                "Stream: a message of 20,001 characters",
                message("message.new", id: "x-5", text: String(repeating: "a", count: 20_001), user: "kim")),
            Case(
                name: "Stream: an empty signature", path: "/webhooks/stream",
                body: Array(message("message.new", id: "x-6", text: "hi", user: "kim").utf8),
                status: .unauthorized, signed: false),
            Case(
                name: "Stream: a gzip bomb (6 MiB of spaces, signed)", path: "/webhooks/stream",
                body: StreamEmulator.gzip(zeros),
                status: .badRequest, signed: true),
        ]
    }()

    static let messages = "/api/chat/tickets/a/messages"

    static func json(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let cases: [Case] = {
        let deep = 1_900  // within the fixture's 4 KiB body limit, beyond JSONDecoder's nesting limit
        var cases: [Case] = [
            // Bodies that are not the request.
            Case(name: "empty body", path: messages, body: [], status: .badRequest),
            Case(name: "null", path: messages, body: json("null"), status: .badRequest),
            Case(name: "an array", path: messages, body: json("[]"), status: .badRequest),
            Case(name: "a bare string", path: messages, body: json(#""hello""#), status: .badRequest),
            Case(name: "a number", path: messages, body: json("123"), status: .badRequest),
            Case(
                name: "deeply nested arrays", path: messages,
                body: json(String(repeating: "[", count: deep) + String(repeating: "]", count: deep)),
                status: .badRequest),
            Case(
                name: "deeply nested objects", path: messages,
                body: json(String(repeating: #"{"text":"#, count: 400) + "1" + String(repeating: "}", count: 400)),
                status: .badRequest),
            Case(
                name: "invalid UTF-8 in a string", path: messages,
                body: json(#"{"text":""#) + [0xff, 0xfe, 0xc0] + json(#""}"#),
                status: .badRequest),
            Case(
                name: "a raw NUL byte in JSON", path: messages, body: json(#"{"text":"a"#) + [0] + json(#"b"}"#),
                status: .badRequest),
            Case(
                name: "an escaped NUL in the text", path: messages, body: json(#"{"text":"before\u0000after"}"#),
                status: .badRequest),
            Case(
                name: "an escape sequence in the text", path: messages, body: json(#"{"text":"\u001b[2Jcleared"}"#),
                status: .badRequest),
            Case(name: "a lone surrogate", path: messages, body: json(#"{"text":"\ud800"}"#), status: .badRequest),
            Case(
                name: "trailing garbage", path: messages, body: json(#"{"text":"hi"} {"text":"again"}"#),
                status: .badRequest),
            Case(
                name: "a body over the limit", path: messages,
                body: json(#"{"text":""# + String(repeating: "a", count: 70_000) + #""}"#),
                status: .contentTooLarge),
            Case(
                name: "a title of 201 characters", path: "/api/chat/tickets",
                body: json(
                    #"{"ticketId":"new-2","title":""# + String(repeating: "t", count: 201)
                        + #"","brand":"acme","creator":"kim"}"#),
                status: .badRequest),
            Case(
                name: "expectedVersion 1e400", path: messages, body: json(#"{"text":"hi","expectedVersion":1e400}"#),
                status: .badRequest),
            Case(
                name: "expectedVersion as a string", path: messages,
                body: json(#"{"text":"hi","expectedVersion":"5"}"#), status: .badRequest),
            Case(
                name: "expectedVersion fractional", path: messages, body: json(#"{"text":"hi","expectedVersion":5.5}"#),
                status: .badRequest),
            Case(
                name: "expectedVersion negative", path: messages, body: json(#"{"text":"hi","expectedVersion":-1}"#),
                status: .badRequest),
            Case(
                name: "a message id with path traversal and NUL", path: messages,
                body: json(#"{"text":"hi","messageId":"../../etc/passwd\u0000"}"#), status: .badRequest),
            Case(
                name: "a message id of 300 characters", path: messages,
                body: json(#"{"text":"hi","messageId":""# + String(repeating: "m", count: 300) + #""}"#),
                status: .badRequest),
            Case(
                name: "attachments not an array", path: messages, body: json(#"{"text":"hi","attachments":"x"}"#),
                status: .badRequest),
            Case(
                name: "a javascript: attachment", path: messages,
                body: json(#"{"text":"hi","attachments":[{"kind":"link","url":"javascript:alert(1)"}]}"#),
                status: .badRequest),
            Case(
                name: "21 attachments", path: messages,
                body: json(
                    #"{"text":"hi","attachments":["#
                        + Array(repeating: #"{"kind":"image","url":"https://x.example/i.png"}"#, count: 21).joined(
                            separator: ",") + "]}"),
                status: .badRequest),
            Case(
                name: "a deliverable with a relative url", path: "/api/chat/tickets/a/deliverables",
                body: json(#"{"title":"Cut","url":"/etc/passwd","kind":"video"}"#), status: .badRequest),
            Case(
                name: "a deliverable with a data: url", path: "/api/chat/tickets/a/deliverables",
                body: json(#"{"title":"Cut","url":"data:text/html,<script>alert(1)</script>","kind":"video"}"#),
                status: .badRequest),
            Case(
                name: "a status with SQL in it", path: "/api/chat/tickets/a/status",
                body: json(#"{"status":"resolved'; DROP TABLE events; --"}"#), status: .badRequest),
            Case(
                name: "an agent with a NUL", path: "/api/chat/tickets/a/assign",
                body: json(#"{"agent":"sam\u0000root"}"#), status: .badRequest),
            Case(
                name: "a ticket with an empty title", path: "/api/chat/tickets",
                body: json(#"{"ticketId":"new-1","title":"  ","brand":"acme","creator":"kim"}"#), status: .badRequest),
            Case(
                name: "a ticket id with SQL", path: "/api/chat/tickets",
                body: json(#"{"ticketId":"1' OR '1'='1","title":"t","brand":"acme","creator":"kim"}"#),
                status: .badRequest),

            // Content types.
            Case(
                name: "text/plain", path: messages, body: json(#"{"text":"hi"}"#), contentType: "text/plain",
                status: .unsupportedMediaType),
            Case(
                name: "XML", path: messages, body: json("<text>hi</text>"), contentType: "application/xml",
                status: .unsupportedMediaType),
            Case(
                name: "multipart", path: messages, body: json("--x\r\n\r\nhi\r\n--x--"),
                contentType: "multipart/form-data; boundary=x",
                status: .unsupportedMediaType),
            Case(
                name: "no content type", path: messages, body: json(#"{"text":"hi"}"#), contentType: nil,
                status: .unsupportedMediaType),
            Case(
                name: "JSON in UTF-16", path: messages, body: Array(#"{"text":"hi"}"#.data(using: .utf16)!),
                contentType: "application/json; charset=utf-16", status: .unsupportedMediaType),
            Case(
                name: "JSON in UTF-16 without a charset", path: messages,
                body: Array(#"{"text":"hi"}"#.data(using: .utf16LittleEndian)!),
                status: .badRequest),

            // Ids in the path.
            Case(
                name: "path traversal in the ticket id", path: "/api/chat/tickets/..%2F..%2Fetc%2Fpasswd/messages",
                body: json(#"{"text":"hi"}"#), status: .badRequest),
            Case(
                name: "SQL in the ticket id", path: "/api/chat/tickets/1'%20OR%20'1'%3D'1/messages",
                body: json(#"{"text":"hi"}"#),
                status: .badRequest),
            Case(
                name: "a statement in the ticket id", path: "/api/chat/tickets/1%3BDROP%20TABLE%20events/join",
                body: nil, status: .badRequest),
            Case(name: "a NUL in the ticket id", path: "/api/chat/tickets/a%00b/join", body: nil, status: .badRequest),
            Case(
                name: "invalid UTF-8 in the ticket id", path: "/api/chat/tickets/a%FF%FE/join", body: nil,
                status: .badRequest),
            Case(
                name: "a ticket id of 58 characters",
                path: "/api/chat/tickets/\(String(repeating: "t", count: 58))/join", body: nil,
                status: .badRequest),
            Case(
                name: "a non-ASCII ticket id", path: "/api/chat/tickets/t%C3%AFcket/join", body: nil,
                status: .badRequest),
            Case(
                name: "path traversal in the channel id", method: .get, path: "/api/chat/channels/ticket-..%2F..%2Fx",
                body: nil,
                status: .badRequest),
            Case(
                name: "a message id with traversal in the path", method: .delete,
                path: "/api/chat/tickets/a/messages/..%2F..%2Fm-1",
                body: nil, status: .notFound),

            // Paging and points in time.
            Case(name: "limit 0", method: .get, path: messages + "?limit=0", body: nil, status: .badRequest),
            Case(
                name: "limit not a number", method: .get, path: messages + "?limit=abc", body: nil, status: .badRequest),
            Case(
                name: "limit in exponent form", method: .get, path: messages + "?limit=1e3", body: nil,
                status: .badRequest),
            Case(
                name: "limit over the maximum", method: .get, path: messages + "?limit=501", body: nil,
                status: .badRequest),
            Case(
                name: "cursor beyond Int64", method: .get, path: messages + "?cursor=9223372036854775808", body: nil,
                status: .badRequest),
            Case(
                name: "cursor not a number", method: .get, path: messages + "?cursor=1%20OR%201", body: nil,
                status: .badRequest),
            Case(
                name: "an empty direction", method: .get, path: messages + "?direction=", body: nil, status: .badRequest
            ),
            Case(
                name: "audit limit negative", method: .get, path: "/api/chat/tickets/a/audit?limit=-1", body: nil,
                status: .badRequest),
            Case(
                name: "audit limit huge", method: .get, path: "/api/chat/tickets/a/audit?limit=100000", body: nil,
                status: .badRequest),
            Case(
                name: "a negative point in time", method: .get, path: "/api/chat/tickets/a/state?at=-5", body: nil,
                status: .badRequest),
            Case(
                name: "a point in time beyond Int64", method: .get,
                path: "/api/chat/tickets/a/state?at=99999999999999999999",
                body: nil, status: .badRequest),
            Case(
                name: "an event feed cursor that is SQL", method: .get, path: "/api/events?after=0;DELETE", body: nil,
                status: .badRequest),

            // Methods and auth.
            Case(
                name: "PUT on messages", method: .put, path: messages, body: json(#"{"text":"hi"}"#), status: .notFound),
            Case(
                name: "a 10 KiB authorization header", path: messages, body: json(#"{"text":"hi"}"#),
                authorization: "Bearer " + String(repeating: "A", count: 10_000), status: .unauthorized),
            Case(
                name: "a bearer token with a NUL", path: messages, body: json(#"{"text":"hi"}"#),
                authorization: "Bearer abc\u{0}def",
                status: .unauthorized),
            Case(
                name: "a webhook with a forged signature", path: "/webhooks/stream",
                body: json(
                    #"{"type":"message.new","channel_type":"messaging","channel_id":"ticket-a","message":{"id":"x","text":"forged","user":{"id":"kim"}}}"#
                ),
                status: .unauthorized),
        ]
        return cases + streamCases
    }()

    /// Every table, every row, every byte: SHA-256 over all tables in a fixed order. SQLite's
    /// full-text index cannot be scanned; its rows are its shadow tables' (`message_search_data`…).
    static func digest(_ store: EventStore) async throws -> [String: String] {
        try await store.readSession { session in
            var digests: [String: String] = [:]
            for table in try LogTables(session).tableNames().sorted()
            where session.dialect != .sqlite || table != MessageSearchIndex.table {
                var hasher = SHA256()
                for row in try session.rows("SELECT * FROM \(table)", []).map({ "\($0.values)" }).sorted() {
                    hasher.update(data: Data(row.utf8))
                }
                digests[table] = hasher.finalize().hexString
            }
            return digests
        }
    }

    @Test func thereAreAtLeastSeventy() {
        #expect(Self.cases.count >= 70)
        #expect(Self.streamCases.count >= 15)
        #expect(Set(Self.cases.map(\.name)).count == Self.cases.count, "each case has its own name")
    }

    @Test(arguments: cases, StoreKind.backends)
    func refusedWithTheDocumentedErrorAndNothingWritten(_ testCase: Case, _ kind: StoreKind) async throws {
        let fixture = try await ServerFixture.make(kind)
        let token = try await ServerFixture.token("ada", .admin)
        let before = try await Self.digest(fixture.store)
        try await fixture.app.test(.live) { client in
            var headers = ServerFixture.headers(nil, json: false)
            headers[.authorization] = testCase.authorization ?? "Bearer \(token)"
            if let contentType = testCase.contentType { headers[.contentType] = contentType }
            if testCase.path == "/webhooks/stream" {
                let body = testCase.body ?? []
                // Stream signs the JSON; a compressed delivery is signed over what it inflates to.
                let signed =
                    GzipBody.isCompressed(body) ? ((try? GzipBody.inflate(body, limit: 8 << 20)) ?? body) : body
                headers[HTTPField.Name("X-Signature")!] =
                    testCase.signed ? WebhookSignature.sign(signed, secret: ServerFixture.streamSecret) : ""
            }
            let response = try await client.execute(
                uri: testCase.path, method: testCase.method, headers: headers,
                body: testCase.body.map { ByteBuffer(bytes: $0) })
            #expect(response.status == testCase.status, "\(String(buffer: response.body).prefix(300))")
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            if let result = testCase.result {
                #expect(response.json?["result"] as? String == result, "\(String(buffer: response.body).prefix(300))")
                #expect((response.json?["reason"] as? String)?.isEmpty == false, "a reason a person can read")
            } else {
                let message = (response.json?["error"] as? [String: Any])?["message"] as? String
                #expect(
                    message?.isEmpty == false,
                    "an error a person can read: \(String(buffer: response.body).prefix(300))")
            }
        }
        #expect(try await Self.digest(fixture.store) == before, "the log must be byte for byte as before")
    }
}
