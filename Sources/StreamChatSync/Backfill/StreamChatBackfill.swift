import Foundation
import Logging
import Ticketlog

/// Appends what a Stream channel holds and the log misses: for when webhooks were lost (Stream
/// gives up on a webhook after about 15 s of outage) or the channel existed before the engine.
///
/// Pages through the channel's history with `POST /channels/messaging/{id}/query` and
/// `messages.id_lt` (newest page first, each page oldest to newest), and feeds each message to
/// the webhook path as the `message.new`, `message.updated` and `message.deleted` Stream would
/// have sent. Event ids derive from the message, as for webhooks, so a backfill is idempotent and
/// never duplicates what a webhook brought.
///
/// Messages the engine sent itself are not posted again; their deletion in Stream is mirrored,
/// and so are edits and membership changes made in Stream, but only while the outbound mirror
/// has caught up (otherwise Stream may simply not have the engine's latest change yet).
///
/// Everything found is authorised as a webhook from a Stream client would be (the rules of the webhook path):
/// a message's author is Stream's record of it, a member joins as themselves; the channel's
/// status, agent, truncation and deletion name no author in Stream's state, so they are refused
/// (reported to `onRefusal`) and left to their webhooks.
public struct StreamChatBackfill: Sendable {
    public struct Report: Sendable, Equatable {
        public var pages = 0
        public var messages = 0
        public var members = 0
        /// Events appended.
        public var appended = 0
        /// Whether Stream's edits of our messages and membership were considered (the mirror had caught up).
        public var reconciledOurChanges = false
    }

    let store: EventStore
    let client: StreamChatClient
    let handler: WebhookHandler
    let pageSize: Int

    /// - Parameters:
    ///   - store: the log to backfill.
    ///   - client: Stream, with the app's credentials.
    ///   - pageSize: messages per page of history (1 to 300, Stream's `message_limit`).
    ///   - logger: where refusals are logged.
    ///   - onRefusal: told of every change found in Stream that the rules keep out of the log
    ///     (see ``WebhookHandler``).
    public init(
        store: EventStore, client: StreamChatClient, pageSize: Int = 100, logger: Logger = .disabled,
        onRefusal: @escaping @Sendable (WebhookHandler.Refusal) -> Void = { _ in }
    ) {
        self.store = store
        self.client = client
        self.handler = WebhookHandler(store: store, apiSecret: "", logger: logger, onRefusal: onRefusal)
        self.pageSize = min(300, max(1, pageSize))  // Stream's message_limit is at most 300
    }

    /// Imports channel `messaging:{stream}`.
    ///
    /// - Parameters:
    ///   - stream: the ticket, whose channel is `messaging:{stream}`.
    ///   - progress: called after each page with the messages read so far.
    /// - Throws: ``StreamChatError`` (`channelNotFound`) when Stream has no such channel, or the error
    ///   Stream answered with.
    public func importChannel(_ stream: StreamID, progress: @Sendable (Int) -> Void = { _ in }) async throws -> Report {
        var report = Report()
        var pages: [[JSONValue]] = []
        var members: [JSONValue] = []
        var channelState: JSONValue?
        var before: String?
        while true {
            var paging: [String: JSONValue] = ["limit": .integer(Int64(pageSize))]
            if let before { paging["id_lt"] = .string(before) }
            let response = try await send(
                StreamChatRequest(
                    .post, "/channels/messaging/\(stream.rawValue)/query",
                    body: .object([
                        "state": .bool(true), "watch": .bool(false), "presence": .bool(false),
                        "messages": .object(paging),
                    ])))
            guard (200..<300).contains(response.status), case .object(let body)? = response.body else {
                throw Self.failure(response, stream)
            }
            report.pages += 1
            if before == nil {
                if case .array(let list)? = body["members"] { members = list }
                channelState = body["channel"]
            }
            let page: [JSONValue] = if case .array(let list)? = body["messages"] { list } else { [] }
            pages.append(page)
            report.messages += page.count
            progress(report.messages)
            guard page.count == pageSize, case .object(let oldest)? = page.first, case .string(let id)? = oldest["id"]
            else { break }
            before = id
        }
        report.reconciledOurChanges = try await mirrorHasCaughtUp()
        let channel: [String: JSONValue] = [
            "cid": .string("messaging:\(stream.rawValue)"), "channel_id": .string(stream.rawValue),
            "channel_type": .string("messaging"),
        ]
        func ingest(_ type: String, _ fields: [String: JSONValue], at time: JSONValue?) async throws {
            var body = channel
            body.merge(fields) { $1 }
            body["type"] = .string(type)
            body["created_at"] = time ?? .null
            if case .appended(let positions, false) = try await handler.ingest(
                try WebhookEvent.parse(try JSONEncoder().encode(JSONValue.object(body))), webhookID: nil)
            {
                report.appended += positions.count
            }
        }
        for message in pages.reversed().joined() {
            guard case .object(let fields) = message, fields["type"] != .string("system") else { continue }
            let ours = fields["ticketlog_event_id"] != nil
            if !ours { try await ingest("message.new", ["message": message], at: fields["created_at"]) }
            if fields["updated_at"] != fields["created_at"], !ours || report.reconciledOurChanges,
                fields["type"] != .string("deleted")
            {
                try await ingest("message.updated", ["message": message], at: fields["updated_at"])
            }
            if fields["type"] == .string("deleted") {
                try await ingest(
                    "message.deleted", ["message": message], at: fields["deleted_at"] ?? fields["updated_at"])
            }
        }
        if report.reconciledOurChanges {
            let inStream = Set(
                members.compactMap { member -> String? in
                    guard case .object(let fields) = member, case .string(let id)? = fields["user_id"] else {
                        return nil
                    }
                    return id
                })
            report.members = inStream.count
            let inLog = Set(try await store.members(of: stream).map(\.user))
            let now = JSONValue.string(store.configuration.clock().description)
            for user in inStream.subtracting(inLog).sorted() {
                try await ingest("member.added", ["member": .object(["user_id": .string(user)])], at: now)
            }
            for user in inLog.subtracting(inStream).sorted() {
                try await ingest("member.removed", ["member": .object(["user_id": .string(user)])], at: now)
            }
            // The channel's status and agent, its truncation and deletion.
            if case .object(let fields)? = channelState {
                try await ingest("channel.updated", ["channel": .object(fields)], at: fields["updated_at"] ?? now)
                if let truncatedAt = fields["truncated_at"] {
                    try await ingest("channel.truncated", ["channel": .object(fields)], at: truncatedAt)
                }
                if let deletedAt = fields["deleted_at"] {
                    try await ingest("channel.deleted", ["channel": .object(fields)], at: deletedAt)
                }
            }
        }
        return report
    }

    /// Whether every event of the engine's own is mirrored: past the outbound cursor there are
    /// only events that came from Stream (they are not sent back). Looks at most 10,000 events.
    private func mirrorHasCaughtUp() async throws -> Bool {
        var next = try await store.syncCursor(StreamChatDestination.mirror) + 1
        for _ in 0..<10 {
            let events = try await store.readAll(from: next, limit: 1_000)
            if events.contains(where: { $0.origin == .local }) { return false }
            guard let last = events.last, events.count == 1_000 else { return true }
            next = last.position + 1
        }
        return false
    }

    /// Sends with a few retries on network errors, 5xx and 429 (waiting for the reset).
    private func send(_ request: StreamChatRequest) async throws -> StreamChatClient.Response {
        try await client.sendRetrying(
            request, attempts: 6, backoff: Backoff(base: 0.2, maximum: 30), now: { store.configuration.clock().date }
        ).result.get()
    }

    static func failure(_ response: StreamChatClient.Response, _ stream: StreamID) -> any Error {
        let error = StreamChatAPIError(response)
        // Server-side get-or-create of a missing channel asks for a creator (code 4).
        if response.status == 404 || (error.code == 4 && error.message.contains("created_by")) {
            return StreamChatError(.channelNotFound, "Stream has no channel messaging:\(stream)")
        }
        return error
    }
}

/// Stream answered a request with an error.
public struct StreamChatAPIError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    /// Stream's error code (`4` input, `9` rate limit, `16` does not exist...), when the body had one.
    public var code: Int64?
    public var message: String

    init(_ response: StreamChatClient.Response) {
        status = response.status
        code = response.errorCode
        message = response.errorMessage ?? "HTTP \(response.status)"
    }

    public var description: String {
        "Stream answered \(status)" + (code.map { " (code \($0))" } ?? "") + ": \(message)"
    }
}
