import Crypto
import Foundation
import Ticketlog

/// What each log event becomes in Stream Chat (channel type `messaging`, id = the stream id):
///
/// | event | calls |
/// |---|---|
/// | ticket opened | upsert brand, creator and actor; get-or-create the channel with `created_by_id` and ticket fields |
/// | agent assigned / unassigned | (upsert the agent;) set / unset `ticket_agent` on the channel |
/// | member joined / left | upsert the user; add / remove the member |
/// | message posted / edited / deleted | upsert the author; send (client-side id) / partial update / soft delete |
/// | status changed | set `ticket_status`; a system message saying so |
/// | deliverable pushed | a system message with the deliverable as an attachment; set `ticket_last_deliverable` |
///
/// Every message we send carries `ticketlog_event_id` (and `ticketlog_position`), so its webhook
/// echo is recognised and skipped, and `ticketlog_message_id`, the log's id of the message, so a
/// change made to it in Stream maps back. Message ids are deterministic (``StreamChatIDs``), so a
/// retry of a send that did reach Stream answers "already exists" instead of duplicating it.
///
/// Events that came in from Stream (origin `stream`) map to nothing: Stream has them already.
public enum OutboundMapper {
    /// - Parameters:
    ///   - event: the event to mirror.
    ///   - messageBornInStream: whether the message an edit or delete is about was posted in
    ///     Stream (then its Stream id is its own id, not ``StreamChatIDs/message(_:in:)``).
    public static func requests(for event: RecordedEvent, messageBornInStream: Bool = false) -> [StreamChatRequest] {
        if case .streamChat = event.origin { return [] }
        // Content erased before it was mirrored (an append that raced its erasure) is not sent:
        // Stream must not get back what the log has forgotten.
        if event.contentErased { return [] }
        let channel = "/channels/messaging/\(event.stream.rawValue)"
        let markers: [String: JSONValue] = [
            "ticketlog_event_id": .string(event.id.uuidString.lowercased()),
            "ticketlog_position": .integer(event.position),
        ]
        func streamMessageID(_ messageID: String) -> String {
            messageBornInStream ? messageID : StreamChatIDs.message(messageID, in: event.stream)
        }
        func upsert(_ users: [(String, Actor.Role)]) -> StreamChatRequest {
            var byID: [String: JSONValue] = [:]
            for (id, role) in users { byID[id] = .object(["id": .string(id), "kind": .string(role.rawValue)]) }
            return StreamChatRequest(.post, "/users", body: .object(["users": .object(byID)]))
        }
        func systemMessage(_ text: String, attachments: [JSONValue] = []) -> StreamChatRequest {
            var message: [String: JSONValue] = [
                "id": .string(StreamChatIDs.systemMessage(event)), "text": .string(text), "type": .string("system"),
                "user_id": .string(event.actor.id),
            ]
            if !attachments.isEmpty { message["attachments"] = .array(attachments) }
            message.merge(markers) { $1 }
            return StreamChatRequest(
                .post, "\(channel)/message", body: .object(["message": .object(message), "skip_push": .bool(true)]))
        }
        func setChannel(_ set: [String: JSONValue], unset: [String] = []) -> StreamChatRequest {
            var body: [String: JSONValue] = ["user_id": .string(event.actor.id)]
            if !set.isEmpty { body["set"] = .object(set) }
            if !unset.isEmpty { body["unset"] = .array(unset.map(JSONValue.string)) }
            return StreamChatRequest(.patch, channel, body: .object(body))
        }
        let actor = (event.actor.id, event.actor.role)

        switch event.payload {
        case .ticketOpened(let opened):
            var data: [String: JSONValue] = [
                "created_by_id": .string(event.actor.id), "name": .string(opened.title),
                "ticket_status": .string("open"), "brand_id": .string(opened.brand),
                "creator_id": .string(opened.creator),
            ]
            if let ticketID = event.stream.ticketID { data["ticket_id"] = .string(ticketID) }
            return [
                upsert([actor, (opened.brand, .brand), (opened.creator, .creator)]),
                StreamChatRequest(
                    .post, "\(channel)/query",
                    body: .object([
                        "data": .object(data), "state": .bool(false), "watch": .bool(false), "presence": .bool(false),
                    ])),
            ]
        case .agentAssigned(let assigned):
            return [upsert([(assigned.agent, .agent)]), setChannel(["ticket_agent": .string(assigned.agent)])]
        case .agentUnassigned:
            return [setChannel([:], unset: ["ticket_agent"])]
        case .memberJoined(let joined):
            return [
                upsert([(joined.user, joined.role)]),
                StreamChatRequest(
                    .post, channel,
                    body: .object([
                        "add_members": .array([.object(["user_id": .string(joined.user)])]),
                        "hide_history": .bool(false),
                    ])),
            ]
        case .memberLeft(let left):
            return [StreamChatRequest(.post, channel, body: .object(["remove_members": .array([.string(left.user)])]))]
        case .messagePosted(let posted):
            var message: [String: JSONValue] = [
                "id": .string(StreamChatIDs.message(posted.messageID, in: event.stream)), "text": .string(posted.text),
                "user_id": .string(event.actor.id),
                "attachments": .array(
                    posted.attachments.map { attachment in
                        var fields: [String: JSONValue] = [
                            "type": .string(attachment.kind), "asset_url": .string(attachment.url),
                            "title_link": .string(attachment.url),
                        ]
                        if let title = attachment.title { fields["title"] = .string(title) }
                        return .object(fields)
                    }),
            ]
            message.merge(markers) { $1 }
            message["ticketlog_message_id"] = .string(posted.messageID)
            return [
                upsert([actor]),
                StreamChatRequest(
                    .post, "\(channel)/message",
                    body: .object([
                        "message": .object(message), "skip_enrich_url": .bool(true),
                    ])),
            ]
        case .messageEdited(let edited):
            var set: [String: JSONValue] = ["text": .string(edited.text)]
            set.merge(markers) { $1 }
            return [
                StreamChatRequest(
                    .put, "/messages/\(streamMessageID(edited.messageID))",
                    body: .object([
                        "set": .object(set), "user_id": .string(event.actor.id), "skip_enrich_url": .bool(true),
                    ]))
            ]
        case .messageDeleted(let deleted):
            return [StreamChatRequest(.delete, "/messages/\(streamMessageID(deleted.messageID))")]
        case .statusChanged(let change):
            let note = change.note.map { ": \($0)" } ?? ""
            return [
                setChannel(["ticket_status": .string(change.to)]),
                systemMessage("\(event.actor.id) changed the status from \(change.from) to \(change.to)\(note)"),
            ]
        case .deliverablePushed(let pushed):
            var attachment: [String: JSONValue] = [
                "type": .string(pushed.kind), "title": .string(pushed.title), "title_link": .string(pushed.url),
                "asset_url": .string(pushed.url), "ticketlog_deliverable_id": .string(pushed.deliverableID),
            ]
            if let note = pushed.note { attachment["text"] = .string(note) }
            return [
                systemMessage("\(event.actor.id) delivered \(pushed.title)", attachments: [.object(attachment)]),
                setChannel(["ticket_last_deliverable": .string(pushed.deliverableID)]),
            ]
        case .erasurePerformed, .unknown:
            return []
        }
    }
}

extension OutboundMapper {
    /// The hard deletes in Stream of what an erasure covers (issue 17): each message, by its
    /// Stream id, and each system message that repeated personal content (deliverables, status
    /// notes). Hard: Stream keeps nothing of them, not even a "deleted" placeholder's text.
    public static func hardDeletes(_ content: ErasedContent) -> [StreamChatRequest] {
        content.messages.map { message in
            let id =
                message.bornInStream ? message.messageID : StreamChatIDs.message(message.messageID, in: message.stream)
            return StreamChatRequest(.delete, "/messages/\(id)", query: ["hard": "true"])
        }
            + content.systemMessageEvents.map { event in
                StreamChatRequest(.delete, "/messages/\(StreamChatIDs.systemMessage(event))", query: ["hard": "true"])
            }
    }
}

/// Deterministic Stream ids for what we send.
public enum StreamChatIDs {
    /// A message's Stream id. Stream message ids are unique app-wide while ours are unique per
    /// ticket, so the ticket is part of it: `ticket-42--m-1`. Ids with characters outside
    /// `[A-Za-z0-9_-]`, or too long for Stream's 255, are replaced by a hash of themselves.
    ///
    /// A message that came in from Stream keeps the id Stream gave it (see
    /// ``OutboundMapper/requests(for:messageBornInStream:)``).
    public static func message(_ messageID: String, in stream: StreamID) -> String {
        let plain = messageID.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-")
        }
        if plain && !messageID.isEmpty && messageID.utf8.count <= 180 { return "\(stream.rawValue)--\(messageID)" }
        let digest = Array(SHA256.hash(data: Data(messageID.utf8)).prefix(16)).hexString
        return "\(stream.rawValue)--h\(digest)"
    }

    /// The id of the system message an event produces: `tl-<event id>`.
    public static func systemMessage(_ event: RecordedEvent) -> String {
        "tl-\(event.id.uuidString.lowercased())"
    }
}
