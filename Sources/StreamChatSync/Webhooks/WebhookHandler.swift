import Foundation
import Logging
import Synchronization
import Ticketlog

/// Receives Stream webhooks into the log: verifies the signature over the raw body, parses,
/// translates, authorises and appends idempotently. Framework-free, so any server can mount it
/// (`TicketlogServer` does at `POST /webhooks/stream`).
///
/// A valid signature proves that Stream sent the delivery, not that its content is true: Stream
/// passes on what its clients set (custom fields, `X-Stream-Client`) and lets channel members do
/// what the channel's permissions allow. So every change is also authorised like an API call
/// (`InboundAccess`): the Stream user must hold a role on the ticket in the log, and may do
/// only what `TicketPolicy` lets that role do. Refusals are acknowledged (Stream must not
/// retry them), logged as warnings and reported to `onRefusal`.
public struct WebhookHandler: Sendable {
    /// What became of a delivery. Every case but ``rejected(_:)`` is an acknowledgement: Stream must
    /// not retry it.
    public enum Outcome: Sendable, Equatable {
        /// Events were appended at these positions (or were there already: a retry).
        case appended(positions: ClosedRange<Int64>, alreadyStored: Bool)
        /// Acknowledged without events, with the reason (echo, unmirrored type...).
        case ignored(String)
        /// Authentic, but not allowed into the log, with the reason (a user without a role on
        /// the ticket, someone else's message, a ticket the log does not have...).
        case refused(String)
        /// Not taken at all: not shown to come from Stream, or not readable; nothing appended.
        case rejected(Rejection)
    }

    /// Why a delivery was not taken at all.
    public enum Rejection: Sendable, Equatable {
        case missingSignature
        /// The signature does not match the body.
        case badSignature
        /// Not valid gzip, inflating too far, or not the JSON of a webhook; the reason.
        case unreadable(String)

        public var reason: String {
            switch self {
            case .missingSignature: "the X-Signature header is missing"
            case .badSignature: "the X-Signature header does not match the body"
            case .unreadable(let reason): reason
            }
        }
    }

    /// A change from Stream that was not let into the log.
    public struct Refusal: Sendable, Equatable {
        /// The webhook's type, e.g. `message.updated`.
        public var type: String
        public var stream: StreamID?
        /// The Stream user who acted, when the webhook names one.
        public var user: String?
        public var reason: String
    }

    let store: EventStore
    let secret: String
    let logger: Logger
    let onRefusal: @Sendable (Refusal) -> Void

    /// - Parameters:
    ///   - store: the log the webhooks go into.
    ///   - apiSecret: the Stream API secret the deliveries are signed with.
    ///   - logger: where refusals and bad signatures are logged.
    ///   - onRefusal: told of every change refused (a metric, a test's record).
    public init(
        store: EventStore, apiSecret: String, logger: Logger = .disabled,
        onRefusal: @escaping @Sendable (Refusal) -> Void = { _ in }
    ) {
        self.store = store
        self.secret = apiSecret
        self.logger = logger
        self.onRefusal = onRefusal
    }

    /// - Parameters:
    ///   - body: the raw request body, exactly as received.
    ///   - signature: the `X-Signature` header.
    ///   - webhookID: the `X-Webhook-Id` header.
    public func handle(body: [UInt8], signature: String?, webhookID: String?) async throws -> Outcome {
        guard let signature, !signature.isEmpty else {
            logger.warning(
                "Webhook without a signature refused", metadata: ["ticketlog.webhook": "\(webhookID ?? "-")"])
            return .rejected(.missingSignature)
        }
        var body = body
        if GzipBody.isCompressed(body) {
            // Stream signs the inflated JSON, so a compressed delivery is inflated (at most
            // `maximumInflatedBytes`) before its signature can be checked.
            do {
                body = try GzipBody.inflate(body, limit: Self.maximumInflatedBytes)
            } catch let error as StreamChatError {
                return .rejected(.unreadable(error.message))
            }
        }
        guard WebhookSignature.isValid(signature, for: body, secret: secret) else {
            logger.warning(
                "Webhook with a bad signature refused", metadata: ["ticketlog.webhook": "\(webhookID ?? "-")"])
            return .rejected(.badSignature)
        }
        let webhook: WebhookEvent
        do {
            webhook = try WebhookEvent.parse(body)
        } catch let error as StreamChatError {
            return .rejected(.unreadable(error.message))
        }
        return try await ingest(webhook, webhookID: webhookID)
    }

    /// Translates, reconciles, authorises and appends a webhook that is authentic (verified, or
    /// built from Stream's REST answers by ``StreamChatBackfill``).
    func ingest(_ webhook: WebhookEvent, webhookID: String?) async throws -> Outcome {
        guard let stream = webhook.stream else {
            // Not about a ticket channel: nothing of the log to decide on.
            switch WebhookTranslator.translate(webhook, webhookID: webhookID, ticket: nil, role: { _ in nil }) {
            case .refuse(let reason): return refuse(webhook, [reason])
            case .ignore(let reason): return .ignored(reason)
            default: return .ignored("\(webhook.type) is not about a ticket channel")
            }
        }
        // Decided inside the write transaction that appends it (`EventStore.transact`): the
        // ticket, its members, the messages and the sync marks as they are when the events go
        // in, and the marks raised together with the events or not at all. Concurrent
        // deliveries about one ticket (a retry racing the original) are decided one after the
        // other, each seeing what the one before it appended.
        var positions: ClosedRange<Int64>?
        var alreadyStored = true
        while true {
            let decision = Mutex(Decision.ignored("nothing new"))
            let outcome = try await store.transact(stream) { ticket in
                let (events, decided) = try self.decide(webhook, webhookID: webhookID, ticket)
                decision.withLock { $0 = decided }
                return events
            }
            let decided = decision.withLock { $0 }
            if case .appended(let refusals, _) = decided, !refusals.isEmpty { _ = refuse(webhook, refusals) }
            if let first = outcome.events.first, let last = outcome.events.last {
                positions = (positions?.lowerBound ?? first.position)...last.position
                alreadyStored = alreadyStored && outcome.wasAlreadyStored
            }
            switch decided {
            case .ignored(let reason):
                if let positions { return .appended(positions: positions, alreadyStored: alreadyStored) }
                return .ignored(reason)
            case .refused(let reasons):
                return refuse(webhook, reasons)
            case .appended(_, let more):
                // A truncation of a very long ticket may need more than one append may carry:
                // the next turn finds the deleted ones deleted and deletes the rest.
                guard more, !outcome.events.isEmpty else {
                    guard let positions else { return .ignored("nothing new") }
                    return .appended(positions: positions, alreadyStored: alreadyStored)
                }
            }
        }
    }

    /// What a delivery's decision came to.
    private enum Decision: Sendable {
        case ignored(String)
        case refused([String])
        /// Events appended; some changes of the delivery may have been refused; `more` when a
        /// truncation has deletions left for another turn.
        case appended(refusals: [String], more: Bool)
    }

    /// The decision about `webhook` on the ticket as the write transaction sees it: the events
    /// to append (none for an ignored or refused delivery) and what it came to.
    private func decide(_ webhook: WebhookEvent, webhookID: String?, _ ticket: TicketTransaction) throws -> (
        [ProposedEvent], Decision
    ) {
        let summary = try ticket.summary()
        let access = InboundAccess(
            ticket: summary,
            memberRoles: summary == nil
                ? [:] : Dictionary(try ticket.members().map { ($0.user, $0.role) }, uniquingKeysWith: { a, _ in a }),
            serverSide: webhook.isServerSide)
        let proposed: [ProposedEvent]
        var more = false
        switch WebhookTranslator.translate(webhook, webhookID: webhookID, ticket: summary, role: access.role(of:)) {
        case .ignore(let reason):
            logger.debug("Webhook acknowledged without events", metadata: ["ticketlog.reason": "\(reason)"])
            return ([], .ignored(reason))
        case .refuse(let reason):
            return ([], .refused([reason]))
        case .truncate(let truncated, let at, let actor, let key, let webhookID):
            guard truncated == ticket.stream else { return ([], .refused(["a truncation of another channel"])) }
            if let refusal = access.refusalToTruncate(by: actor) { return ([], .refused([refusal])) }
            let deletions = try truncation(ticket, at: at, actor: actor, key: key, webhookID: webhookID)
            let limit = max(1, store.configuration.maximumEventsPerAppend)
            more = deletions.count > limit
            proposed = Array(deletions.prefix(limit))
        case .append(let target, let events):
            guard target == ticket.stream else { return ([], .refused(["a change of another channel"])) }
            if webhook.type == "message.new", let message = webhook.message, let marker = message.ticketlogEventID {
                if try isEcho(of: message, marker: marker, ticket) {
                    return ([], .ignored("echo of our own write (message \(message.id) is what event \(marker) sent)"))
                }
                logger.warning(
                    "A Stream message carries a ticketlog marker that matches nothing this engine sent: taken as a message of its own",
                    metadata: [
                        "ticketlog.stream": "\(target)", "ticketlog.message": "\(message.id)",
                        "ticketlog.marker": "\(marker)",
                    ])
            }
            proposed = events
        }
        let (reconciled, reason, refusals) = try reconcile(proposed, webhook: webhook, access: access, ticket)
        guard !reconciled.isEmpty else {
            if !refusals.isEmpty { return ([], .refused(refusals)) }
            return ([], .ignored(reason ?? "nothing new"))
        }
        return (reconciled, .appended(refusals: refusals, more: more))
    }

    /// Logs and reports refused changes; the result of a delivery that was refused whole.
    private func refuse(_ webhook: WebhookEvent, _ reasons: [String]) -> Outcome {
        let user = webhook.user?.id ?? webhook.message?.user?.id
        for reason in reasons {
            logger.warning(
                "Change from Stream refused",
                metadata: [
                    "ticketlog.webhook.type": "\(webhook.type)",
                    "ticketlog.stream": "\(webhook.stream?.rawValue ?? "-")",
                    "ticketlog.stream_chat.user": "\(user ?? "-")", "ticketlog.reason": "\(reason)",
                ])
            onRefusal(Refusal(type: webhook.type, stream: webhook.stream, user: user, reason: reason))
        }
        return .refused(reasons.joined(separator: "; "))
    }

    /// Whether a marked `message.new` is the echo of a message this engine sent: the event the
    /// marker names is stored, in this ticket, and the mirror makes exactly this message of it
    /// (the same Stream id and text). A marker alone is not enough: any client can copy one.
    private func isEcho(of message: WebhookEvent.Message, marker: String, _ ticket: TicketTransaction) throws -> Bool {
        guard let id = UUID(uuidString: marker), let stored = try ticket.event(id: id), stored.stream == ticket.stream
        else { return false }
        return OutboundMapper.requests(for: stored).contains { request in
            guard request.method == .post, request.path.hasSuffix("/message"), case .object(let body)? = request.body,
                case .object(let sent)? = body["message"]
            else { return false }
            return sent["id"] == .string(message.id) && sent["text"] == .string(message.text ?? "")
        }
    }

    /// Stream's SQS limit is 256 KB a message; an HTTP webhook is not bigger in practice.
    static let maximumInflatedBytes = 4 << 20

    /// The deletions a truncation at `at` makes: every message of the ticket posted up to then
    /// and not deleted yet. The truncation time is kept, so a late `message.new` of a message
    /// posted before it does not bring the message back.
    private func truncation(
        _ ticket: TicketTransaction, at: Timestamp, actor: Actor, key: String, webhookID: String?
    ) throws -> [ProposedEvent] {
        let stream = ticket.stream
        _ = try ticket.raiseSyncMark(
            StreamChatDestination.webhooks, key: "truncated|\(stream)", to: at.microsecondsSinceEpoch)
        var events: [ProposedEvent] = []
        var after: Int64 = 0
        while true {
            let page = try ticket.messages(after: after, limit: 500, includeDeleted: false)
            for message in page where message.postedAt <= at {
                events.append(
                    ProposedEvent(
                        id: WebhookTranslator.derivedID("channel.truncated|\(stream)|\(key)|\(message.messageID)"),
                        actor: actor,
                        occurredAt: at, origin: .streamChat(webhookID: webhookID, messageID: nil),
                        payload: .messageDeleted(MessageDeleted(messageID: message.messageID))))
            }
            guard let last = page.last, page.count == 500 else { return events }
            after = last.position
        }
    }

    /// Whether a newer Stream time than `event`'s was seen for `key` already (records nothing).
    private func isStale(_ event: ProposedEvent, key: String, _ ticket: TicketTransaction) throws -> Bool {
        guard let mark = try ticket.syncMark(StreamChatDestination.webhooks, key: key) else { return false }
        return mark > event.occurredAt.microsecondsSinceEpoch
    }

    /// Whether `event`'s Stream time is not older than the newest seen for `key` (and records it if so).
    private func isNewest(_ event: ProposedEvent, key: String, _ ticket: TicketTransaction) throws -> Bool {
        try ticket.raiseSyncMark(
            StreamChatDestination.webhooks, key: key, to: event.occurredAt.microsecondsSinceEpoch)
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
    ///
    /// Each change is authorised (``InboundAccess``) before anything else, so a refused one raises
    /// no mark either. Returns the events to append, why some were left out, and the refusals.
    private func reconcile(
        _ events: [ProposedEvent], webhook: WebhookEvent, access: InboundAccess, _ ticket: TicketTransaction
    ) throws -> (events: [ProposedEvent], reason: String?, refusals: [String]) {
        let stream = ticket.stream
        var result: [ProposedEvent] = []
        var reason: String?
        var refusals: [String] = []
        for event in events {
            let messageID: String? =
                switch event.payload {
                case .messagePosted(let posted): posted.messageID
                case .messageEdited(let edited): edited.messageID
                case .messageDeleted(let deleted): deleted.messageID
                default: nil
                }
            guard let messageID else {
                let member: String? =
                    switch event.payload {
                    case .memberJoined(let joined): joined.user
                    case .memberLeft(let left): left.user
                    default: nil
                    }
                let key: String? =
                    if let member { "member|\(stream)|\(member)" } else if case .streamChat = event.origin {
                        "channel|\(stream)"
                    } else { nil }
                // Stale first: a change older than one applied already is out of date whoever
                // made it (a channel update carries the whole channel, so an old one would look
                // like its sender undoing the newer change).
                if let key, try isStale(event, key: key, ticket) {
                    reason =
                        member.map { "a newer membership change of \($0) was applied already" }
                        ?? "a newer change of the channel was applied already"
                    continue
                }
                if let refusal = access.refusal(event, messageAuthor: nil) {
                    refusals.append(refusal)
                    continue
                }
                if let key, try !isNewest(event, key: key, ticket) {
                    reason = "a newer change was applied already"
                    continue
                }
                result.append(event)
                continue
            }
            let known = try ticket.message(messageID)
            // The author of a message the log does not know yet is Stream's author of it.
            let author = known?.author.id ?? webhook.message?.user?.id ?? event.actor.id
            var authored = event
            authored.actor = Actor(id: author, role: access.role(of: author) ?? .system)
            let isEditOrDelete =
                switch event.payload {
                case .messageEdited, .messageDeleted: true
                default: false
                }
            if known == nil, isEditOrDelete,
                let refusal = access.refusal(
                    ProposedEvent(
                        id: event.id, actor: authored.actor,
                        payload: .messagePosted(MessagePosted(messageID: messageID, text: ""))),
                    messageAuthor: nil)
            {
                refusals.append(refusal)  // the post this change implies is not allowed in the first place
                continue
            }
            if case .messageEdited = event.payload, try isStale(event, key: "message|\(stream)|\(messageID)", ticket) {
                reason = "a newer version of message \(messageID) was applied already"
                continue
            }
            if case .messagePosted = event.payload, let known {
                if try isSameMessage(known, as: event, ticket) {
                    reason = "message \(messageID) is in the log already"
                } else {
                    refusals.append(
                        "a message with the id \(messageID) is in the log already, by \(known.author.id): a Stream message cannot take its id"
                    )
                }
                continue
            }
            if let refusal = access.refusal(event, messageAuthor: author) {
                refusals.append(refusal)
                continue
            }
            if case .messageEdited = event.payload, try !isNewest(event, key: "message|\(stream)|\(messageID)", ticket)
            {
                reason = "a newer version of message \(messageID) was applied already"
                continue
            }
            if known?.isDeleted == true {
                reason = "message \(messageID) is deleted already"
                continue
            }
            if known == nil,
                let truncated = try ticket.syncMark(StreamChatDestination.webhooks, key: "truncated|\(stream)"),
                event.occurredAt.microsecondsSinceEpoch <= truncated
            {
                reason = "message \(messageID) is from before the channel was truncated"
                continue
            }
            switch event.payload {
            case .messageEdited(let edited) where known != nil && known?.text == edited.text:
                reason = "message \(messageID) has this text already"
            case .messageEdited(let edited) where known == nil:
                // Its own id: a repeat of this delivery, once the message is known, appends the
                // edit under the edit's id instead of clashing with this post.
                var posted = authored
                posted.id = WebhookTranslator.derivedID("posted-from-update|\(event.id.uuidString)")
                posted.payload = .messagePosted(MessagePosted(messageID: messageID, text: edited.text))
                result.append(posted)
            case .messageDeleted where known == nil:
                var posted = authored
                posted.id = WebhookTranslator.derivedID("posted-before-delete|\(event.id.uuidString)")
                posted.payload = .messagePosted(MessagePosted(messageID: messageID, text: ""))
                result += [posted, event]
            default:
                result.append(event)
            }
        }
        return (result, reason, refusals)
    }

    /// Whether the log's message `known` is the one `post` is about: posted from the same Stream
    /// message, or posted here and mirrored under the id the mirror gives it.
    private func isSameMessage(_ known: TicketState.Message, as post: ProposedEvent, _ ticket: TicketTransaction) throws
        -> Bool
    {
        let stream = ticket.stream
        guard case .streamChat(_, let streamMessageID?) = post.origin,
            let posting = try ticket.event(at: known.position)
        else { return false }
        switch posting.origin {
        case .streamChat(_, let original): return original == streamMessageID
        case .local: return streamMessageID == StreamChatIDs.message(known.messageID, in: stream)
        }
    }
}
