import Foundation
import Hummingbird
import Ticketlog

/// `/api/chat/tickets`: opening, joining and leaving, assignment, messages, status,
/// deliverables, the audit trail and point-in-time state of a ticket.
struct TicketRoutes {
    let store: EventStore
    /// Pages of messages already sent, while their ticket stays as it was.
    let pages: MessagePageCache

    struct OpenRequest: Decodable {
        var ticketId: String
        var title: String
        var brand: String
        var creator: String
    }

    struct AssignRequest: Decodable {
        var agent: String
        var expectedVersion: Int64?
    }

    struct MessageRequest: Decodable {
        var messageId: String?
        var text: String
        var attachments: [MessagePosted.Attachment]?
        var expectedVersion: Int64?
    }

    struct EditRequest: Decodable {
        var text: String
        var expectedVersion: Int64?
    }

    struct StatusRequest: Decodable {
        var status: String
        var note: String?
        var expectedVersion: Int64?
    }

    struct DeliverableRequest: Decodable {
        var deliverableId: String?
        var title: String
        var url: String
        var kind: String
        var note: String?
        var expectedVersion: Int64?
    }

    func register(on group: RouterGroup<TicketlogRequestContext>) {
        group.post { request, context in
            let caller = try context.requireCaller()
            let body = try await request.decodeJSON(OpenRequest.self, context: context)
            let stream = try Self.stream(body.ticketId)
            switch caller.role {
            case .admin: break
            case .brand where body.brand == caller.id: break
            case .brand: throw APIError(.forbidden, code: "forbidden", "a brand can only open tickets for itself")
            default: throw APIError(.forbidden, code: "forbidden", "only admins and brands can open tickets")
            }
            let outcome = try await store.execute(
                .open(title: body.title, brand: body.brand, creator: body.creator), on: stream, by: caller.actor)
            return EditedResponse(
                status: .created, response: ChannelReference(channelId: stream.rawValue, version: outcome.streamVersion)
            )
        }
        group.post(":ticketId/join") { _, context in
            let (caller, stream) = try target(context)
            let outcome = try await store.execute(
                .join(user: caller.id, role: caller.role), on: stream, by: caller.actor, requiringAccess: true)
            return ChannelReference(channelId: stream.rawValue, version: outcome.streamVersion)
        }
        group.post(":ticketId/leave") { _, context in
            let (caller, stream) = try target(context)
            let outcome = try await store.execute(
                .leave(user: caller.id), on: stream, by: caller.actor, requiringAccess: true)
            return ChannelReference(channelId: stream.rawValue, version: outcome.streamVersion)
        }
        group.post(":ticketId/assign") { request, context in
            let caller = try context.requireCaller()
            try AccessPolicy.requireAdmin(caller, to: "assign agents")
            let (_, stream) = try target(context)
            let body = try await request.decodeJSON(AssignRequest.self, context: context)
            let outcome = try await store.execute(
                .assign(agent: body.agent), on: stream, by: caller.actor, expectedVersion: body.expectedVersion,
                requiringAccess: true)
            return ChannelReference(channelId: stream.rawValue, version: outcome.streamVersion)
        }
        group.post(":ticketId/messages") { request, context in
            let (caller, stream) = try target(context)
            let body = try await request.decodeJSON(MessageRequest.self, context: context)
            let messageID = body.messageId ?? store.configuration.newID().uuidString.lowercased()
            let outcome = try await store.execute(
                .postMessage(messageID: messageID, text: body.text, attachments: body.attachments ?? []),
                on: stream, by: caller.actor, expectedVersion: body.expectedVersion, requiringAccess: true)
            return EditedResponse(status: .created, response: try await messageResponse(messageID, stream, outcome))
        }
        group.get(":ticketId/messages") { request, context in
            let (_, stream, mark) = try await authorize(context)
            let query = request.uri.queryParameters
            let limit = try query.integer("limit", default: 50, in: 1...500)
            let backwards: Bool
            switch query["direction"].map(String.init) {
            case nil, "forwards": backwards = false
            case "backwards": backwards = true
            case let other?:
                throw APIError(
                    .badRequest, code: "bad_request", "direction must be forwards or backwards, not '\(other)'")
            }
            let cursor = try query.int64("cursor")
            let key = MessagePageCache.Key(stream: stream, cursor: cursor, backwards: backwards, limit: limit)
            if let page = pages.page(key, mark: mark) {
                return MessagesPage.response(page, mark: mark, to: request)
            }
            let (messages, readMark) = try await store.markedMessages(
                of: stream, from: cursor.map(MessageCursor.position), direction: backwards ? .backwards : .forwards,
                limit: limit)
            let page = ByteBuffer(
                bytes: MessagesPage(
                    messages: messages, nextCursor: messages.count == limit ? messages.last?.position : nil
                ).json)
            pages.keep(page, for: key, mark: readMark)
            return MessagesPage.response(page, mark: readMark, to: request)
        }
        group.patch(":ticketId/messages/:messageId") { request, context in
            let (caller, stream) = try target(context)
            let messageID = try context.parameters.require("messageId")
            let body = try await request.decodeJSON(EditRequest.self, context: context)
            let outcome = try await store.execute(
                .editMessage(messageID: messageID, text: body.text), on: stream, by: caller.actor,
                expectedVersion: body.expectedVersion, requiringAccess: true)
            return try await messageResponse(messageID, stream, outcome)
        }
        group.delete(":ticketId/messages/:messageId") { _, context in
            let (caller, stream) = try target(context)
            let messageID = try context.parameters.require("messageId")
            let outcome = try await store.execute(
                .deleteMessage(messageID: messageID), on: stream, by: caller.actor, requiringAccess: true)
            return try await messageResponse(messageID, stream, outcome)
        }
        group.post(":ticketId/status") { request, context in
            let (caller, stream) = try target(context)
            let body = try await request.decodeJSON(StatusRequest.self, context: context)
            let outcome = try await store.execute(
                .changeStatus(to: body.status, note: body.note), on: stream, by: caller.actor,
                expectedVersion: body.expectedVersion, requiringAccess: true)
            return StatusResponse(channelId: stream.rawValue, status: body.status, version: outcome.streamVersion)
        }
        group.post(":ticketId/deliverables") { request, context in
            let (caller, stream) = try target(context)
            let body = try await request.decodeJSON(DeliverableRequest.self, context: context)
            let deliverable = DeliverablePushed(
                deliverableID: body.deliverableId ?? store.configuration.newID().uuidString.lowercased(),
                title: body.title,
                url: body.url,
                kind: body.kind, note: body.note)
            let outcome = try await store.execute(
                .pushDeliverable(deliverable), on: stream, by: caller.actor, expectedVersion: body.expectedVersion,
                requiringAccess: true)
            return EditedResponse(
                status: .created,
                response: DeliverableResponse(
                    deliverable: deliverable, position: outcome.events.last?.position ?? 0,
                    version: outcome.streamVersion))
        }
        group.get(":ticketId/audit") { request, context in
            let (_, stream, _) = try await authorize(context)
            let query = request.uri.queryParameters
            let limit = try query.integer("limit", default: 100, in: 1...1_000)
            let entries = try await store.auditTrail(
                AuditQuery(stream: stream, afterPosition: try query.int64("cursor") ?? 0, limit: limit))
            return AuditPage(
                channelId: stream.rawValue, entries: entries,
                nextCursor: entries.count == limit ? entries.last?.position : nil)
        }
        group.get(":ticketId/state") { request, context in
            let (_, stream, _) = try await authorize(context)
            let point: PointInTime?
            switch request.uri.queryParameters["at"].map(String.init) {
            case nil: point = nil
            case let at? where Int64(at) != nil:
                guard let position = Int64(at), position >= 0 else {
                    throw APIError(
                        .badRequest, code: "bad_request", "at must be a position (0 or more) or an ISO 8601 time")
                }
                point = .position(position)
            case let at?:
                guard let time = Timestamp(iso8601: at) else {
                    throw APIError(
                        .badRequest, code: "bad_request", "at must be a position or an ISO 8601 time, not '\(at)'")
                }
                point = .time(time)
            }
            let query = request.uri.queryParameters
            // Only the last messages, when asked: all of them by default (the state's meaning).
            let kept =
                query["messages"] == nil
                ? nil : try query.integer("messages", default: 0, in: TicketState.keptMessageCounts)
            return try await store.ticketState(stream, at: point, keepingLastMessages: kept)
        }
    }

    /// The caller and the ticket of a write route. Whether the caller reaches the ticket is
    /// decided in the write's own turn (``EventStore/execute(_:on:by:expectedVersion:requiringAccess:)``),
    /// with the same 404 as ``authorize(_:)``'s: no read of the ticket before the write (it was
    /// a twentieth of a `POST …/messages`' CPU, re-reading the pages every commit had changed).
    private func target(_ context: TicketlogRequestContext) throws -> (Caller, StreamID) {
        (try context.requireCaller(), try Self.stream(try context.parameters.require("ticketId")))
    }

    /// The caller and the ticket of the route, once the caller may access it, and the ticket's
    /// content mark.
    private func authorize(_ context: TicketlogRequestContext) async throws -> (
        Caller, StreamID, TicketContentMark?
    ) {
        let (caller, stream) = try target(context)
        let mark = try await AccessPolicy.access(stream, for: caller, in: store)
        return (caller, stream, mark)
    }

    private func messageResponse(_ messageID: String, _ stream: StreamID, _ outcome: CommandOutcome) async throws
        -> MessageResponse
    {
        // A message this command posted is the post itself (what the projection holds for it);
        // otherwise (a repeated post, an edit) it is read.
        for event in outcome.events {
            if case .messagePosted(let posted) = event.payload, posted.messageID == messageID {
                return MessageResponse(
                    message: TicketState.Message(posted: posted, event: event), version: outcome.streamVersion)
            }
        }
        guard let message = try await store.message(messageID, in: stream) else {
            throw APIError(.notFound, code: "not_found", "\(stream) has no message \(messageID)")
        }
        return MessageResponse(message: message, version: outcome.streamVersion)
    }

    static func stream(_ ticketID: String) throws -> StreamID {
        guard let stream = StreamID.ticket(ticketID) else {
            throw APIError(
                .badRequest, code: "bad_request",
                "'\(ticketID)' is not a ticket id (1-57 characters of a-z, A-Z, 0-9, _ and -)")
        }
        return stream
    }
}
