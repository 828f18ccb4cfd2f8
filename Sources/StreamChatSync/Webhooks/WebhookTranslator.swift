import Crypto
import Foundation
import Ticketlog

/// Turns a Stream webhook into log events, or says why it needs none.
///
/// Event ids are derived from what the webhook is about (event type, channel, message id and
/// version, member), not from the delivery: a retried delivery, a duplicate, or a message the
/// log already has from a backfill gives the same ids, so the append is idempotent.
public enum WebhookTranslator {
    public enum Outcome: Sendable {
        /// Append these events to this stream (once ``WebhookHandler`` has reconciled and
        /// authorised them).
        case append(StreamID, [ProposedEvent])
        /// The channel was truncated at this Stream time: every message of the ticket posted
        /// up to then is deleted (event ids derive from `key` and the message id).
        case truncate(StreamID, at: Timestamp, actor: Actor, key: String, webhookID: String?)
        /// Nothing to append, and why (acknowledged all the same): an echo of our own change, a
        /// type the log does not mirror, nothing new.
        case ignore(String)
        /// Not allowed into the log, and why (acknowledged all the same, counted and logged for
        /// operators): a ticket the log does not have, text that breaks the `TextRule`.
        case refuse(String)
    }

    /// The longest message text taken from Stream: Stream's own maximum (`max_message_length`
    /// is at most 20,000).
    public static let maximumTextLength = 20_000

    /// - Parameters:
    ///   - webhook: the delivery, parsed.
    ///   - webhookID: the delivery's `X-Webhook-Id`, recorded in each event's origin.
    ///   - ticket: the ticket as the log has it now (channel events are compared with it);
    ///     `nil` when the log has no such ticket: then nothing is appended (tickets are opened
    ///     through the API only).
    ///   - role: the role a Stream user acts in on this ticket (Stream does not know ours), `nil`
    ///     for someone with no role on it (recorded as `system`; ``WebhookHandler`` refuses what
    ///     they do unless the request was server-side).
    public static func translate(
        _ webhook: WebhookEvent, webhookID: String?, ticket: TicketSummary? = nil, role: (String) -> Actor.Role?
    ) -> Outcome {
        guard let stream = webhook.stream else {
            return .ignore("\(webhook.type) is not about a ticket channel")
        }
        guard
            [
                "message.new", "message.updated", "message.deleted", "member.added", "member.removed",
                "channel.updated", "channel.truncated", "channel.deleted",
            ].contains(webhook.type)
        else { return .ignore("\(webhook.type) is not mirrored into the log") }
        // Our own changes come back as webhooks: recognised by what a Stream client cannot forge
        // (a server-side request naming our client). A marked `message.new` is checked against
        // the event it names by the handler.
        if webhook.isOurOwnRequest {
            return .ignore("echo of our own change (server-side request from \(StreamChatAuth.clientName))")
        }
        guard let ticket else {
            return .refuse(
                "\(webhook.type) for \(stream), a ticket the log does not have: tickets are opened through the API")
        }
        if let problem = textProblem(webhook) { return .refuse(problem) }
        let at = webhook.occurredAt ?? Timestamp(microsecondsSinceEpoch: 0)
        func event(_ key: String, actor: String, messageID: String?, at time: Timestamp, _ payload: EventPayload)
            -> ProposedEvent
        {
            ProposedEvent(
                id: derivedID("\(webhook.type)|\(stream)|\(key)"),
                actor: Actor(id: actor, role: role(actor) ?? .system),
                occurredAt: time, origin: .streamChat(webhookID: webhookID, messageID: messageID), payload: payload)
        }
        switch webhook.type {
        case "message.new", "message.updated", "message.deleted":
            guard let message = webhook.message else { return .ignore("\(webhook.type) without a message") }
            let logID = logMessageID(of: message, in: stream)
            let author = message.user?.id ?? webhook.user?.id ?? "stream"
            let posted = message.createdAt.flatMap(Timestamp.init(iso8601:)) ?? at
            switch webhook.type {
            case "message.new":
                guard message.type != "error" else {
                    return .ignore("message \(message.id) was not stored by Stream (type error)")
                }
                return .append(
                    stream,
                    [
                        event(
                            message.id, actor: author, messageID: message.id, at: posted,
                            .messagePosted(MessagePosted(messageID: logID, text: message.text ?? "")))
                    ])
            case "message.updated":
                let version = message.updatedAt ?? webhook.createdAt ?? ""
                let edited = message.updatedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                // The editor is the event's user when there is one (a moderator may edit).
                let editor = webhook.user?.id ?? author
                return .append(
                    stream,
                    [
                        event(
                            "\(message.id)|\(version)", actor: editor, messageID: message.id, at: edited,
                            .messageEdited(MessageEdited(messageID: logID, text: message.text ?? "")))
                    ])
            default:
                if webhook.hardDelete == true && webhook.isOurOwnRequest {
                    // The mirror's own hard delete of erased content: an erasure, not a deletion.
                    return .ignore("our own hard delete of \(message.id) (erased content)")
                }
                let actor = webhook.user?.id ?? author
                let deleted = message.deletedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                return .append(
                    stream,
                    [
                        event(
                            message.id, actor: actor, messageID: message.id, at: deleted,
                            .messageDeleted(MessageDeleted(messageID: logID)))
                    ])
            }
        case "member.added", "member.removed":
            // Recorded payloads put the affected member in `member.user_id` (and in `user`);
            // older `member.removed` payloads only have `user`.
            guard let user = webhook.member?.userID ?? webhook.member?.user?.id ?? webhook.user?.id else {
                return .ignore("\(webhook.type) without a member")
            }
            let key = "\(user)|\(webhook.createdAt ?? "")"
            // Who made the change, when the payload says (a `user` other than the member);
            // otherwise the member themselves.
            let actor = webhook.user?.id ?? user
            let payload: EventPayload =
                webhook.type == "member.added"
                ? .memberJoined(MemberJoined(user: user, role: role(user) ?? .system))
                : .memberLeft(MemberLeft(user: user))
            return .append(stream, [event(key, actor: actor, messageID: nil, at: at, payload)])
        default:
            let actor = webhook.user?.id ?? "stream"
            let time = webhook.createdAt ?? ""
            switch webhook.type {
            case "channel.updated":
                guard let channel = webhook.channel else { return .ignore("channel.updated without a channel") }
                guard channel.deletedAt == nil else { return .ignore("channel.updated of a deleted channel") }
                var events: [ProposedEvent] = []
                if let status = channel.ticketStatus, status != ticket.status {
                    guard TicketCommand.statuses.contains(status) else {
                        return .refuse("ticket_status '\(status.prefix(50))' set in Stream is not a status")
                    }
                    events.append(
                        event(
                            "status|\(status)|\(time)", actor: actor, messageID: nil, at: at,
                            .statusChanged(StatusChanged(from: ticket.status, to: status, note: "changed in Stream"))))
                }
                // An agent set in Stream is mirrored; a missing `ticket_agent` is not read as an
                // unassignment (a channel we never gave an agent has none either).
                if let agent = channel.ticketAgent, agent != ticket.agent {
                    events.append(
                        event(
                            "agent|\(agent)|\(time)", actor: actor, messageID: nil, at: at,
                            .agentAssigned(AgentAssigned(agent: agent))))
                }
                return events.isEmpty
                    ? .ignore("channel.updated changes nothing the log mirrors") : .append(stream, events)
            case "channel.truncated":
                let truncatedAt = webhook.channel?.truncatedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                return .truncate(
                    stream, at: truncatedAt, actor: Actor(id: actor, role: role(actor) ?? .system), key: time,
                    webhookID: webhookID)
            default:
                guard ticket.status != "closed" else { return .ignore("the ticket is closed already") }
                return .append(
                    stream,
                    [
                        event(
                            "deleted|\(time)", actor: actor, messageID: nil, at: at,
                            .statusChanged(
                                StatusChanged(from: ticket.status, to: "closed", note: "the Stream channel was deleted")
                            ))
                    ])
            }
        }
    }

    /// The log's id of a Stream message. A message this engine sent has the Stream id
    /// ``StreamChatIDs/message(_:in:)`` of its log id and carries that log id in
    /// `ticketlog_message_id`; the field is believed only when the two agree, since any client can
    /// put any `ticketlog_message_id` on a message of its own. Every other message keeps the id
    /// Stream gave it.
    static func logMessageID(of message: WebhookEvent.Message, in stream: StreamID) -> String {
        if let claimed = message.ticketlogMessageID, StreamChatIDs.message(claimed, in: stream) == message.id {
            return claimed
        }
        return message.id
    }

    /// The `TextRule` over what a webhook would put in the log: user ids, message ids, the
    /// message text, the agent and status names.
    static func textProblem(_ webhook: WebhookEvent) -> String? {
        var lines: [(String, String?)] = [
            ("the user id", webhook.user?.id), ("the message id", webhook.message?.id),
            ("the message's user id", webhook.message?.user?.id), ("the member's user id", webhook.member?.userID),
            ("the member's user id", webhook.member?.user?.id), ("ticket_agent", webhook.channel?.ticketAgent),
            ("ticket_status", webhook.channel?.ticketStatus),
        ]
        if webhook.message?.ticketlogMessageID != nil {
            lines.append(("ticketlog_message_id", webhook.message?.ticketlogMessageID))
        }
        for case (let field, let value?) in lines {
            if let problem = TextRule.problem(value, field, limit: 255) { return "\(webhook.type): \(problem)" }
        }
        if let text = webhook.message?.text,
            let problem = TextRule.problem(
                text, "the message text", limit: maximumTextLength, kind: .text, allowEmpty: true)
        {
            return "\(webhook.type): \(problem)"
        }
        return nil
    }

    /// A UUID determined by `key` (SHA-256, version 8 "custom" layout).
    static func derivedID(_ key: String) -> UUID {
        var bytes = Array(SHA256.hash(data: Data(key.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x80
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}
