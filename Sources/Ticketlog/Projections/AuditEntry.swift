/// One line of a ticket's audit trail: who did what to which ticket, when, and from where.
public struct AuditEntry: Hashable, Sendable {
    public var event: RecordedEvent

    public var position: Int64 { event.position }
    public var stream: StreamID { event.stream }
    public var actor: Actor { event.actor }
    public var type: EventType { event.type }
    public var occurredAt: Timestamp { event.occurredAt }

    /// Where the event came from: `local` or `stream` (mirrored in from Stream Chat).
    public var origin: String {
        event.origin.kind
    }

    /// What happened, in words, on one line: `kim (creator) posted message m-3: "Friday works"`.
    /// Whatever the event holds, the line holds no control character, line break or bidirectional
    /// override (``TextRule/escaped(_:)``): a note cannot start a forged line of its own.
    public var summary: String { TextRule.escaped(words) }

    private var words: String {
        let who = "\(actor.id) (\(actor.role.rawValue))"
        switch event.payload {
        case .ticketOpened(let opened):
            return
                "\(who) opened the ticket \(quoted(opened.title)) for brand \(opened.brand) with creator \(opened.creator)"
        case .agentAssigned(let assigned):
            return "\(who) assigned agent \(assigned.agent)"
        case .agentUnassigned(let unassigned):
            return "\(who) unassigned agent \(unassigned.agent)"
        case .memberJoined(let joined):
            return joined.user == actor.id
                ? "\(who) joined the channel" : "\(who) added \(joined.user) (\(joined.role.rawValue)) to the channel"
        case .memberLeft(let left):
            return left.user == actor.id ? "\(who) left the channel" : "\(who) removed \(left.user) from the channel"
        case .messagePosted(let posted):
            let files = posted.attachments.isEmpty ? "" : " with \(posted.attachments.count) attachment(s)"
            return "\(who) posted message \(posted.messageID)\(files): \(quoted(posted.text))"
        case .messageEdited(let edited):
            return "\(who) edited message \(edited.messageID) to \(quoted(edited.text))"
        case .messageDeleted(let deleted):
            return "\(who) deleted message \(deleted.messageID)"
        case .statusChanged(let change):
            let note = change.note.map { " with the note \(quoted($0))" } ?? ""
            return "\(who) changed the status from \(change.from) to \(change.to)\(note)"
        case .deliverablePushed(let pushed):
            return
                "\(who) pushed \(pushed.kind) deliverable \(pushed.deliverableID) \(quoted(pushed.title)): \(event.contentErased && pushed.url.isEmpty ? "[erased]" : pushed.url)"
        case .erasurePerformed(let erasure):
            let what =
                erasure.subject.map { "the content of \($0)" } ?? erasure.ticket.map { "the content of \($0)" }
                ?? "the content of the months before \(erasure.before ?? "?")"
            return
                "\(who) erased \(what) (\(erasure.keys.count) key(s)), asked by \(erasure.requestedBy): \(quoted(erasure.reason))"
        case .unknown(let type, _):
            return "\(who) recorded \(type.rawValue)"
        }
    }

    /// Text in quotes, cut to 80 characters, line breaks as spaces (other control characters are
    /// escaped with the whole line).
    private func quoted(_ text: String) -> String {
        if event.contentErased && text.isEmpty { return "[erased]" }
        let line = text.replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ")
        return "\"" + (line.count > 80 ? line.prefix(79) + "…" : line) + "\""
    }
}

/// Which audit entries to list. Every condition given must hold.
public struct AuditQuery: Hashable, Sendable {
    public var stream: StreamID?
    public var actor: String?
    public var types: Set<EventType>?
    /// `occurredAt` at or after this.
    public var from: Timestamp?
    /// `occurredAt` before this.
    public var to: Timestamp?
    /// Entries after this position (for paging).
    public var afterPosition: Int64
    public var limit: Int

    public init(
        stream: StreamID? = nil, actor: String? = nil, types: Set<EventType>? = nil, from: Timestamp? = nil,
        to: Timestamp? = nil, afterPosition: Int64 = 0, limit: Int = 1_000
    ) {
        self.stream = stream
        self.actor = actor
        self.types = types
        self.from = from
        self.to = to
        self.afterPosition = afterPosition
        self.limit = limit
    }
}
