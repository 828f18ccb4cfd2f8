import Foundation
import Logging
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
        // Decided against the ticket as it is, appended only if it is still so: concurrent
        // deliveries about one ticket (a retry racing the original) are decided one after the other.
        for _ in 0..<Self.maximumAttempts {
            // The version first: a ticket that moves after it makes the append conflict.
            var (ticket, version): (TicketSummary?, Int64) = (nil, 0)
            if let stream = webhook.stream {
                version = try await store.version(of: stream)
                ticket = try await store.ticketSummary(stream)
            }
            let access = try await InboundAccess(
                ticket: ticket,
                memberRoles: ticket == nil
                    ? [:]
                    : Dictionary(
                        try await store.members(of: ticket!.stream).map { ($0.user, $0.role) },
                        uniquingKeysWith: { a, _ in a }),
                serverSide: webhook.isServerSide)
            let (stream, proposed): (StreamID, [ProposedEvent])
            switch WebhookTranslator.translate(webhook, webhookID: webhookID, ticket: ticket, role: access.role(of:)) {
            case .ignore(let reason):
                logger.debug("Webhook acknowledged without events", metadata: ["ticketlog.reason": "\(reason)"])
                return .ignored(reason)
            case .refuse(let reason):
                return refuse(webhook, [reason])
            case .truncate(let truncated, let at, let actor, let key, let webhookID):
                if let refusal = access.refusalToTruncate(by: actor) { return refuse(webhook, [refusal]) }
                (stream, proposed) = (
                    truncated, try await truncation(of: truncated, at: at, actor: actor, key: key, webhookID: webhookID)
                )
            case .append(let target, let events):
                if webhook.type == "message.new", let message = webhook.message, let marker = message.ticketlogEventID {
                    if try await isEcho(of: message, marker: marker, in: target) {
                        return .ignored("echo of our own write (message \(message.id) is what event \(marker) sent)")
                    }
                    logger.warning(
                        "A Stream message carries a ticketlog marker that matches nothing this engine sent: taken as a message of its own",
                        metadata: [
                            "ticketlog.stream": "\(target)", "ticketlog.message": "\(message.id)",
                            "ticketlog.marker": "\(marker)",
                        ])
                }
                (stream, proposed) = (target, events)
            }
            let (reconciled, reason, refusals) = try await reconcile(
                proposed, in: stream, webhook: webhook, access: access)
            guard !reconciled.isEmpty else {
                if !refusals.isEmpty { return refuse(webhook, refusals) }
                return .ignored(reason ?? "nothing new")
            }
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
                if !refusals.isEmpty { _ = refuse(webhook, refusals) }
                return .appended(
                    positions: first!.positions.lowerBound...last!.positions.upperBound,
                    alreadyStored: first!.wasAlreadyStored && last!.wasAlreadyStored)
            } catch let error as EventStoreError where error.code == .versionConflict {
                continue  // the ticket moved while this delivery was decided: decide again
            }
        }
        throw StreamChatError(
            .busyTicket,
            "webhook \(webhookID ?? "-") kept conflicting with concurrent appends to its ticket; Stream will retry it")
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
    private func isEcho(of message: WebhookEvent.Message, marker: String, in stream: StreamID) async throws -> Bool {
        guard let id = UUID(uuidString: marker), let stored = try await store.event(id: id), stored.stream == stream
        else { return false }
        return OutboundMapper.requests(for: stored).contains { request in
            guard request.method == .post, request.path.hasSuffix("/message"), case .object(let body)? = request.body,
                case .object(let sent)? = body["message"]
            else { return false }
            return sent["id"] == .string(message.id) && sent["text"] == .string(message.text ?? "")
        }
    }

    static let maximumAttempts = 20
    /// Stream's SQS limit is 256 KB a message; an HTTP webhook is not bigger in practice.
    static let maximumInflatedBytes = 4 << 20

    /// The deletions a truncation at `at` makes: every message of the ticket posted up to then
    /// and not deleted yet. The truncation time is kept, so a late `message.new` of a message
    /// posted before it does not bring the message back.
    private func truncation(of stream: StreamID, at: Timestamp, actor: Actor, key: String, webhookID: String?)
        async throws -> [ProposedEvent]
    {
        _ = try await store.raiseSyncMark(
            StreamChatDestination.webhooks, key: "truncated|\(stream)", to: at.microsecondsSinceEpoch)
        var events: [ProposedEvent] = []
        var cursor: MessageCursor?
        while true {
            let page = try await store.messages(of: stream, from: cursor, limit: 500, includeDeleted: false)
            for message in page where message.postedAt <= at {
                events.append(
                    ProposedEvent(
                        id: WebhookTranslator.derivedID("channel.truncated|\(stream)|\(key)|\(message.messageID)"),
                        actor: actor,
                        occurredAt: at, origin: .streamChat(webhookID: webhookID, messageID: nil),
                        payload: .messageDeleted(MessageDeleted(messageID: message.messageID))))
            }
            guard let last = page.last, page.count == 500 else { return events }
            cursor = .position(last.position)
        }
    }

    /// Whether a newer Stream time than `event`'s was seen for `key` already (records nothing).
    private func isStale(_ event: ProposedEvent, key: String) async throws -> Bool {
        guard let mark = try await store.syncMark(StreamChatDestination.webhooks, key: key) else { return false }
        return mark > event.occurredAt.microsecondsSinceEpoch
    }

    /// Whether `event`'s Stream time is not older than the newest seen for `key` (and records it if so).
    private func isNewest(_ event: ProposedEvent, key: String) async throws -> Bool {
        try await store.raiseSyncMark(
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
        _ events: [ProposedEvent], in stream: StreamID, webhook: WebhookEvent, access: InboundAccess
    ) async throws -> (events: [ProposedEvent], reason: String?, refusals: [String]) {
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
                if let key, try await isStale(event, key: key) {
                    reason =
                        member.map { "a newer membership change of \($0) was applied already" }
                        ?? "a newer change of the channel was applied already"
                    continue
                }
                if let refusal = access.refusal(event, messageAuthor: nil) {
                    refusals.append(refusal)
                    continue
                }
                if let key, try await !isNewest(event, key: key) {
                    reason = "a newer change was applied already"
                    continue
                }
                result.append(event)
                continue
            }
            let known = try await store.message(messageID, in: stream)
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
            if case .messageEdited = event.payload, try await isStale(event, key: "message|\(stream)|\(messageID)") {
                reason = "a newer version of message \(messageID) was applied already"
                continue
            }
            if case .messagePosted = event.payload, let known {
                if try await isSameMessage(known, as: event, in: stream) {
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
            if case .messageEdited = event.payload, try await !isNewest(event, key: "message|\(stream)|\(messageID)") {
                reason = "a newer version of message \(messageID) was applied already"
                continue
            }
            if known?.isDeleted == true {
                reason = "message \(messageID) is deleted already"
                continue
            }
            if known == nil,
                let truncated = try await store.syncMark(StreamChatDestination.webhooks, key: "truncated|\(stream)"),
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
    private func isSameMessage(_ known: TicketState.Message, as post: ProposedEvent, in stream: StreamID) async throws
        -> Bool
    {
        guard case .streamChat(_, let streamMessageID?) = post.origin,
            let posting = try await store.readAll(from: known.position, limit: 1).first
        else { return false }
        switch posting.origin {
        case .streamChat(_, let original): return original == streamMessageID
        case .local: return streamMessageID == StreamChatIDs.message(known.messageID, in: stream)
        }
    }
}
