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
        /// Append these events to this stream.
        case append(StreamID, [ProposedEvent])
        /// The channel was truncated at this Stream time: every message of the ticket posted
        /// up to then is deleted (event ids derive from `key` and the message id).
        case truncate(StreamID, at: Timestamp, actor: Actor, key: String, webhookID: String?)
        /// Nothing to append, and why (acknowledged all the same).
        case ignore(String)
    }

    /// - Parameters:
    ///   - webhookID: the delivery's `X-Webhook-Id`, recorded in each event's origin.
    ///   - ticket: the ticket as the log has it now (channel events are compared with it).
    ///   - role: the role a Stream user id acts in on this ticket (Stream does not know ours).
    public static func translate(
        _ webhook: WebhookEvent, webhookID: String?, ticket: TicketSummary? = nil, role: (String) -> Actor.Role
    ) -> Outcome {
        guard let stream = webhook.stream else {
            return .ignore("\(webhook.type) is not about a ticket channel")
        }
        let at = webhook.occurredAt ?? Timestamp(microsecondsSinceEpoch: 0)
        func event(_ key: String, actor: String, messageID: String?, at time: Timestamp, _ payload: EventPayload) -> ProposedEvent {
            ProposedEvent(
                id: derivedID("\(webhook.type)|\(stream)|\(key)"), actor: Actor(id: actor, role: role(actor)),
                occurredAt: time, origin: .stream(webhookID: webhookID, messageID: messageID), payload: payload)
        }
        switch webhook.type {
        case "message.new", "message.updated", "message.deleted":
            guard let message = webhook.message else { return .ignore("\(webhook.type) without a message") }
            // Our sends carry our marker; our edits and deletes are recognised by the client that
            // made them (a marked message may later be changed in Stream by someone else).
            if webhook.type == "message.new" && message.ticketlogEventID != nil {
                return .ignore("echo of our own write (message \(message.id) carries ticketlog_event_id)")
            }
            if webhook.requestInfo?.sdk == StreamAuth.clientName {
                return .ignore("echo of our own change to message \(message.id) (request from \(StreamAuth.clientName))")
            }
            // A message we sent is known to the log by its own id, not by Stream's.
            let logID = message.ticketlogMessageID ?? message.id
            let author = message.user?.id ?? webhook.user?.id ?? "stream"
            let posted = message.createdAt.flatMap(Timestamp.init(iso8601:)) ?? at
            switch webhook.type {
            case "message.new":
                guard message.type != "error" else { return .ignore("message \(message.id) was not stored by Stream (type error)") }
                return .append(stream, [event(message.id, actor: author, messageID: message.id, at: posted,
                    .messagePosted(MessagePosted(messageID: logID, text: message.text ?? "")))])
            case "message.updated":
                let version = message.updatedAt ?? webhook.createdAt ?? ""
                let edited = message.updatedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                // The editor is the event's user when there is one (a moderator may edit).
                let editor = webhook.user?.id ?? author
                return .append(stream, [event("\(message.id)|\(version)", actor: editor, messageID: message.id, at: edited,
                    .messageEdited(MessageEdited(messageID: logID, text: message.text ?? "")))])
            default:
                let actor = webhook.user?.id ?? author
                let deleted = message.deletedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                return .append(stream, [event(message.id, actor: actor, messageID: message.id, at: deleted,
                    .messageDeleted(MessageDeleted(messageID: logID)))])
            }
        case "member.added", "member.removed":
            if webhook.requestInfo?.sdk == StreamAuth.clientName {
                return .ignore("echo of our own membership change (request from \(StreamAuth.clientName))")
            }
            // Recorded payloads put the affected member in `member.user_id`; older
            // `member.removed` payloads only have `user`.
            guard let user = webhook.member?.userID ?? webhook.member?.user?.id ?? webhook.user?.id else {
                return .ignore("\(webhook.type) without a member")
            }
            let key = "\(user)|\(webhook.createdAt ?? "")"
            let payload: EventPayload = webhook.type == "member.added"
                ? .memberJoined(MemberJoined(user: user, role: role(user))) : .memberLeft(MemberLeft(user: user))
            return .append(stream, [event(key, actor: user, messageID: nil, at: at, payload)])
        case "channel.updated", "channel.truncated", "channel.deleted":
            if webhook.requestInfo?.sdk == StreamAuth.clientName {
                return .ignore("echo of our own change to the channel (request from \(StreamAuth.clientName))")
            }
            guard let ticket else { return .ignore("\(webhook.type) of a ticket the log does not have") }
            let actor = webhook.user?.id ?? "stream"
            let time = webhook.createdAt ?? ""
            switch webhook.type {
            case "channel.updated":
                guard let channel = webhook.channel else { return .ignore("channel.updated without a channel") }
                guard channel.deletedAt == nil else { return .ignore("channel.updated of a deleted channel") }
                var events: [ProposedEvent] = []
                if let status = channel.ticketStatus, status != ticket.status {
                    guard TicketCommand.statuses.contains(status) else {
                        return .ignore("ticket_status '\(status)' set in Stream is not a status")
                    }
                    events.append(event("status|\(status)|\(time)", actor: actor, messageID: nil, at: at,
                        .statusChanged(StatusChanged(from: ticket.status, to: status, note: "changed in Stream"))))
                }
                // An agent set in Stream is mirrored; a missing `ticket_agent` is not read as an
                // unassignment (a channel we never gave an agent has none either).
                if let agent = channel.ticketAgent, agent != ticket.agent {
                    events.append(event("agent|\(agent)|\(time)", actor: actor, messageID: nil, at: at,
                        .agentAssigned(AgentAssigned(agent: agent))))
                }
                return events.isEmpty ? .ignore("channel.updated changes nothing the log mirrors") : .append(stream, events)
            case "channel.truncated":
                let truncatedAt = webhook.channel?.truncatedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                return .truncate(stream, at: truncatedAt, actor: Actor(id: actor, role: role(actor)), key: time, webhookID: webhookID)
            default:
                guard ticket.status != "closed" else { return .ignore("the ticket is closed already") }
                return .append(stream, [event("deleted|\(time)", actor: actor, messageID: nil, at: at,
                    .statusChanged(StatusChanged(from: ticket.status, to: "closed", note: "the Stream channel was deleted")))])
            }
        default:
            return .ignore("\(webhook.type) is not mirrored into the log")
        }
    }

    /// A UUID determined by `key` (SHA-256, version 8 "custom" layout).
    static func derivedID(_ key: String) -> UUID {
        var bytes = Array(SHA256.hash(data: Data(key.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x80
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return UUID(uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}
