import Foundation
import Logging
import Ticketlog

/// Receives Stream webhooks into the log: verifies the signature over the raw body, parses,
/// translates, and appends idempotently. Framework-free, so any server can mount it
/// (`TicketlogServer` does at `POST /webhooks/stream`).
public struct WebhookHandler: Sendable {
    /// What became of a delivery; every case but ``rejected`` is answered 2xx so Stream does
    /// not retry it.
    public enum Result: Sendable, Equatable {
        /// Events were appended at these positions (or were there already: a retry).
        case appended(positions: ClosedRange<Int64>, alreadyStored: Bool)
        /// Acknowledged without events, with the reason (echo, unmirrored type...).
        case ignored(String)
        /// Refused: bad signature (401) or an unreadable body (400); nothing appended.
        case rejected(status: Int, reason: String)
    }

    let store: EventStore
    let secret: String
    let logger: Logger

    public init(store: EventStore, apiSecret: String, logger: Logger = .disabled) {
        self.store = store
        self.secret = apiSecret
        self.logger = logger
    }

    /// - Parameters:
    ///   - body: the raw request body, exactly as received.
    ///   - signature: the `X-Signature` header.
    ///   - webhookID: the `X-Webhook-Id` header.
    public func handle(body: [UInt8], signature: String?, webhookID: String?) async throws -> Result {
        var body = body
        if GzipBody.isCompressed(body) {
            // Compressed deliveries are signed over the inflated JSON.
            do {
                body = try GzipBody.inflate(body, limit: Self.maximumInflatedBytes)
            } catch let error as EventStoreError {
                return .rejected(status: 400, reason: error.message)
            }
        }
        guard let signature, WebhookSignature.isValid(signature, for: body, secret: secret) else {
            logger.warning("Webhook with a bad signature refused", metadata: ["ticketlog.webhook": "\(webhookID ?? "-")"])
            return .rejected(status: 401, reason: "the X-Signature header does not match the body")
        }
        let webhook: WebhookEvent
        do {
            webhook = try WebhookEvent.parse(body)
        } catch let error as EventStoreError {
            return .rejected(status: 400, reason: error.message)
        }
        return try await ingest(webhook, webhookID: webhookID)
    }

    /// Translates, reconciles and appends a webhook that is authentic (verified, or built from
    /// Stream's REST answers by ``StreamBackfill``).
    func ingest(_ webhook: WebhookEvent, webhookID: String?) async throws -> Result {
        // Decided against the ticket as it is, appended only if it is still so: concurrent
        // deliveries about one ticket (a retry racing the original) are decided one after the other.
        for _ in 0..<Self.maximumAttempts {
            // The version first: a ticket that moves after it makes the append conflict.
            var (ticket, version): (TicketSummary?, Int64) = (nil, 0)
            if let stream = webhook.stream {
                version = try await store.version(of: stream)
                ticket = try await store.ticketSummary(stream)
            }
            let roles = try await roleResolver(for: webhook.stream, ticket: ticket)
            let (stream, proposed): (StreamID, [ProposedEvent])
            switch WebhookTranslator.translate(webhook, webhookID: webhookID, ticket: ticket, role: roles) {
            case .ignore(let reason):
                logger.debug("Webhook acknowledged without events", metadata: ["ticketlog.reason": "\(reason)"])
                return .ignored(reason)
            case .truncate(let truncated, let at, let actor, let key, let webhookID):
                (stream, proposed) = (truncated, try await truncation(of: truncated, at: at, actor: actor, key: key, webhookID: webhookID))
            case .append(let target, let events):
                (stream, proposed) = (target, events)
            }
            let (reconciled, reason) = try await reconcile(proposed, in: stream)
            guard !reconciled.isEmpty else { return .ignored(reason ?? "nothing new") }
            do {
                // Normally one append. A truncation of a very long ticket can exceed what one
                // append may carry: then consecutive appends, each at the version the previous
                // left (if one fails, Stream's retry finds the deleted ones deleted already).
                let limit = max(1, store.configuration.maximumEventsPerAppend)
                var first: AppendResult?
                var last: AppendResult?
                var at = version
                for start in stride(from: 0, to: reconciled.count, by: limit) {
                    let chunk = Array(reconciled[start..<min(start + limit, reconciled.count)])
                    let result = try await store.append(chunk, to: stream, expectedVersion: .exact(at))
                    at = result.streamVersion
                    first = first ?? result
                    last = result
                }
                return .appended(
                    positions: first!.positions.lowerBound...last!.positions.upperBound,
                    alreadyStored: first!.wasAlreadyStored && last!.wasAlreadyStored)
            } catch let error as EventStoreError where error.code == .versionConflict {
                continue  // the ticket moved while this delivery was decided: decide again
            }
        }
        throw EventStoreError(
            code: .versionConflict, message: "webhook \(webhookID ?? "-") kept conflicting with concurrent appends; Stream will retry it")
    }

    static let maximumAttempts = 20
    /// Stream's SQS limit is 256 KB a message; an HTTP webhook is not bigger in practice.
    static let maximumInflatedBytes = 4 << 20

    /// The deletions a truncation at `at` makes: every message of the ticket posted up to then
    /// and not deleted yet. The truncation time is kept, so a late `message.new` of a message
    /// posted before it does not bring the message back.
    private func truncation(of stream: StreamID, at: Timestamp, actor: Actor, key: String, webhookID: String?) async throws -> [ProposedEvent] {
        _ = try await store.raiseSyncMark("stream-inbound", key: "truncated|\(stream)", to: at.microsecondsSinceEpoch)
        var events: [ProposedEvent] = []
        var cursor: MessageCursor?
        while true {
            let page = try await store.messages(of: stream, from: cursor, limit: 500, includeDeleted: false)
            for message in page where message.postedAt <= at {
                events.append(ProposedEvent(
                    id: WebhookTranslator.derivedID("channel.truncated|\(stream)|\(key)|\(message.messageID)"), actor: actor,
                    occurredAt: at, origin: .stream(webhookID: webhookID, messageID: nil),
                    payload: .messageDeleted(MessageDeleted(messageID: message.messageID))))
            }
            guard let last = page.last, page.count == 500 else { return events }
            cursor = .position(last.position)
        }
    }

    /// Whether `event`'s Stream time is not older than the newest seen for `key` (and records it if so).
    private func isNewest(_ event: ProposedEvent, key: String) async throws -> Bool {
        try await store.raiseSyncMark("stream-inbound", key: key, to: event.occurredAt.microsecondsSinceEpoch)
    }

    /// Webhooks come without order and some may be missing: a message's update or delete can
    /// arrive before its `message.new`. Against what the log knows: a post of a known message adds
    /// nothing; an update of an unknown message posts it with its current text; a delete of an
    /// unknown message posts and deletes it; an update to the text the log has adds nothing;
    /// anything about a deleted message adds nothing.
    /// Updates of one message, joins and leaves of one member, and changes of the channel may also
    /// arrive swapped: each carries Stream's time, and the newest Stream time seen per message,
    /// member and channel is kept in the log file (`sync_marks`), so an older change arriving after
    /// a newer one is stale and adds nothing. (Stream's times are compared with Stream's only.) A
    /// message the log does not know, from before the channel's last truncation, stays out.
    private func reconcile(_ events: [ProposedEvent], in stream: StreamID) async throws -> ([ProposedEvent], String?) {
        var result: [ProposedEvent] = []
        var reason: String?
        for event in events {
            let messageID: String? = switch event.payload {
            case .messagePosted(let posted): posted.messageID
            case .messageEdited(let edited): edited.messageID
            case .messageDeleted(let deleted): deleted.messageID
            default: nil
            }
            guard let messageID else {
                let member: String? = switch event.payload {
                case .memberJoined(let joined): joined.user
                case .memberLeft(let left): left.user
                default: nil
                }
                if let member, try await !isNewest(event, key: "member|\(stream)|\(member)") {
                    reason = "a newer membership change of \(member) was applied already"
                    continue
                }
                if member == nil, case .stream = event.origin, try await !isNewest(event, key: "channel|\(stream)") {
                    reason = "a newer change of the channel was applied already"
                    continue
                }
                result.append(event)
                continue
            }
            if case .messageEdited = event.payload, try await !isNewest(event, key: "message|\(stream)|\(messageID)") {
                reason = "a newer version of message \(messageID) was applied already"
                continue
            }
            let known = try await store.message(messageID, in: stream)
            if known?.isDeleted == true {
                reason = "message \(messageID) is deleted already"
                continue
            }
            if known == nil, let truncated = try await store.syncMark("stream-inbound", key: "truncated|\(stream)"),
                event.occurredAt.microsecondsSinceEpoch <= truncated
            {
                reason = "message \(messageID) is from before the channel was truncated"
                continue
            }
            switch event.payload {
            case .messagePosted where known != nil:
                reason = "message \(messageID) is in the log already"
            case .messageEdited(let edited) where known != nil && known?.text == edited.text:
                reason = "message \(messageID) has this text already"
            case .messageEdited(let edited) where known == nil:
                // Its own id: a repeat of this delivery, once the message is known, appends the
                // edit under the edit's id instead of clashing with this post.
                var posted = event
                posted.id = WebhookTranslator.derivedID("posted-from-update|\(event.id.uuidString)")
                posted.payload = .messagePosted(MessagePosted(messageID: messageID, text: edited.text))
                result.append(posted)
            case .messageDeleted where known == nil:
                var posted = event
                posted.id = WebhookTranslator.derivedID("posted-before-delete|\(event.id.uuidString)")
                posted.payload = .messagePosted(MessagePosted(messageID: messageID, text: ""))
                result += [posted, event]
            default:
                result.append(event)
            }
        }
        return (result, reason)
    }

    /// The role a Stream user acts in on a ticket: the ticket's brand, creator or assigned agent,
    /// else the role they joined with, else `system` (someone the log does not know).
    private func roleResolver(for stream: StreamID?, ticket: TicketSummary?) async throws -> @Sendable (String) -> Actor.Role {
        guard let stream, let ticket else { return { _ in .system } }
        let members = Dictionary(try await store.members(of: stream).map { ($0.user, $0.role) }, uniquingKeysWith: { a, _ in a })
        return { user in
            if user == ticket.brand { return .brand }
            if user == ticket.creator { return .creator }
            if user == ticket.agent { return .agent }
            return members[user] ?? .system
        }
    }
}
