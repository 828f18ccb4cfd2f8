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
        /// Nothing to append, and why (acknowledged all the same).
        case ignore(String)
    }

    /// - Parameters:
    ///   - webhookID: the delivery's `X-Webhook-Id`, recorded in each event's origin.
    ///   - role: the role a Stream user id acts in on this ticket (Stream does not know ours).
    public static func translate(
        _ webhook: WebhookEvent, webhookID: String?, role: (String) -> Actor.Role
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
            if message.ticketlogEventID != nil {
                return .ignore("echo of our own write (message \(message.id) carries ticketlog_event_id)")
            }
            let author = message.user?.id ?? webhook.user?.id ?? "stream"
            let posted = message.createdAt.flatMap(Timestamp.init(iso8601:)) ?? at
            switch webhook.type {
            case "message.new":
                guard message.type != "error" else { return .ignore("message \(message.id) was not stored by Stream (type error)") }
                return .append(stream, [event(message.id, actor: author, messageID: message.id, at: posted,
                    .messagePosted(MessagePosted(messageID: message.id, text: message.text ?? "")))])
            case "message.updated":
                let version = message.updatedAt ?? webhook.createdAt ?? ""
                let edited = message.updatedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                return .append(stream, [event("\(message.id)|\(version)", actor: author, messageID: message.id, at: edited,
                    .messageEdited(MessageEdited(messageID: message.id, text: message.text ?? "")))])
            default:
                let actor = webhook.user?.id ?? author
                let deleted = message.deletedAt.flatMap(Timestamp.init(iso8601:)) ?? at
                return .append(stream, [event(message.id, actor: actor, messageID: message.id, at: deleted,
                    .messageDeleted(MessageDeleted(messageID: message.id)))])
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
