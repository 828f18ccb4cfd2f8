import Hummingbird
import HummingbirdCore
import Ticketlog

/// `/api/chat`: the caller's Stream token and channels.
struct ChatRoutes {
    let store: EventStore
    /// `nil` when the server has no Stream API secret: chat tokens are off (503).
    let chatTokens: ChatTokenIssuer?
    let streamAPIKey: String?

    func register(on group: RouterGroup<TicketlogRequestContext>) {
        group.get("token") { _, context in
            let caller = try context.requireCaller()
            guard let chatTokens, let streamAPIKey else {
                throw APIError(
                    .serviceUnavailable, code: "stream_not_configured",
                    "chat tokens are off: this server has no Stream API key and secret (see /healthz)")
            }
            return ChatTokenResponse(
                token: try await chatTokens.token(for: caller.id), userId: caller.id, apiKey: streamAPIKey)
        }
        group.get("channels") { request, context in
            let caller = try context.requireCaller()
            let limit = try request.uri.queryParameters.integer("limit", default: 100, in: 1...1_000)
            let tickets = try await store.tickets(AccessPolicy.filter(for: caller), limit: limit)
            return ChannelsResponse(channels: tickets)
        }
        group.get("search") { request, context in
            let caller = try context.requireCaller()
            let query = request.uri.queryParameters
            guard let text = query["q"].map(String.init), !text.isEmpty else {
                throw APIError(.badRequest, code: "bad_request", "query parameter q (the words to find) is required")
            }
            guard text.utf8.count <= 500 else {
                throw APIError(.badRequest, code: "bad_request", "query parameter q is longer than 500 bytes")
            }
            var search = MessageSearch(
                text, tickets: AccessPolicy.filter(for: caller),
                limit: try query.integer("limit", default: 20, in: 1...100))
            if let ticket = query["ticket"].map(String.init) {
                guard let stream = StreamID.ticket(ticket) ?? StreamID(rawValue: ticket), stream.ticketID != nil else {
                    throw APIError(
                        .badRequest, code: "bad_request",
                        "ticket must be a ticket id (1001) or channel id (ticket-1001)")
                }
                search.ticket = stream
            }
            search.from = try query.time("from")
            search.to = try query.time("to")
            do {
                return SearchResponse(hits: try await store.search(search))
            } catch let error as EventStoreError where error.code == .invalidEvent {
                throw APIError(.badRequest, code: "bad_request", error.message)
            }
        }
        group.get("channels/:channelId") { _, context in
            let caller = try context.requireCaller()
            let raw = try context.parameters.require("channelId")
            guard let stream = StreamID(rawValue: raw), stream.ticketID != nil else {
                throw APIError(.badRequest, code: "bad_request", "'\(raw)' is not a channel id (ticket-{id})")
            }
            let ticket = try await AccessPolicy.ticket(stream, for: caller, in: store)
            let members = try await store.members(of: stream)
            let last = try await store.messages(of: stream, direction: .backwards, limit: 1, includeDeleted: false)
                .first
            return ChannelInfoResponse(channel: ticket, members: members, lastMessage: last)
        }
    }
}

extension FlatDictionary<Substring, Substring> {
    /// An integer query parameter within `range`, or 400 saying what is allowed.
    func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = self[Substring(name)] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError(
                .badRequest, code: "bad_request",
                "query parameter \(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// An ISO 8601 time query parameter, or 400.
    func time(_ name: String) throws -> Timestamp? {
        guard let text = self[Substring(name)] else { return nil }
        guard let time = Timestamp(iso8601: String(text)) else {
            throw APIError(
                .badRequest, code: "bad_request",
                "query parameter \(name) must be an ISO 8601 time (2026-11-27 or 2026-11-27T14:30:00Z)")
        }
        return time
    }

    func int64(_ name: String) throws -> Int64? {
        guard let text = self[Substring(name)] else { return nil }
        guard let number = Int64(text), number >= 0 else {
            throw APIError(.badRequest, code: "bad_request", "query parameter \(name) must be a non-negative integer")
        }
        return number
    }
}
