import Foundation
import GRDB

extension EventStore {
    /// Checks `command` against `stream`'s current state and appends its events, as `actor`, at
    /// `clock()` time.
    ///
    /// - Parameters:
    ///   - command: what is asked (``TicketCommand``).
    ///   - stream: the ticket.
    ///   - actor: who asks: the events' actor, and whose rights ``TicketPolicy`` checks where the
    ///     command depends on them (editing, deleting).
    ///   - expectedVersion: when given, the ticket must be at exactly this version
    ///     (a client's optimistic concurrency); when `nil`, the command is checked against the
    ///     state it is appended to: the facts are read, the decision made and the events appended
    ///     in one turn of the writer, so no other append can slip in between.
    ///   - requiringAccess: first check, in the same turn, that `actor` reaches the ticket at all
    ///     (``TicketPolicy``): a ticket that does not exist and one that is someone else's both
    ///     throw `.notFound` with the same message (``noAccessibleTicket(_:for:)``), so a caller
    ///     cannot tell which ids are taken. The HTTP API's write routes use it: no read of the
    ///     ticket before the write.
    /// - Throws: ``EventStoreError`` — `.notFound` (no such ticket or message, or none the actor
    ///   reaches), `.rejected` (the command does not hold in this state, with the reason),
    ///   `.versionConflict`, `.invalidEvent` (bad input such as an empty text), `.storageFailure`.
    @discardableResult
    public func execute(
        _ command: TicketCommand, on stream: StreamID, by actor: Actor, expectedVersion: Int64? = nil,
        requiringAccess: Bool = false
    ) async throws -> CommandOutcome {
        try await transact(
            stream,
            Self.decision(
                command, on: stream, by: actor, expectedVersion: expectedVersion, requiringAccess: requiringAccess,
                configuration: configuration))
    }

    /// What an actor who does not reach `stream` is told, whether or not it exists.
    public static func noAccessibleTicket(_ stream: StreamID, for actor: Actor) -> EventStoreError {
        EventStoreError(code: .notFound, message: "there is no ticket \(stream) that \(actor.id) can see")
    }

    /// What ``execute(_:on:by:expectedVersion:requiringAccess:)`` decides inside the write transaction, for a
    /// writer of either backend: the facts read, the version checked, the events built (none
    /// when the command changes nothing). Checks what needs no state first.
    package static func decision(
        _ command: TicketCommand, on stream: StreamID, by actor: Actor, expectedVersion: Int64?,
        requiringAccess: Bool = false, configuration: Configuration
    ) throws -> @Sendable (TicketTransaction) throws -> [ProposedEvent] {
        if let expectedVersion, expectedVersion < 0 {
            throw EventStoreError.invalid("expected version \(expectedVersion) is negative")
        }
        try TextRule.check(actor.id, "the actor's id", limit: 255)
        // Read, decide and append in one turn of the writer: the decision sees the state the
        // events are appended to, so there is nothing to retry.
        return { ticket in
            let facts = try Self.commandFacts(command, ticket, accessOf: requiringAccess ? actor : nil)
            if let expectedVersion, expectedVersion != facts.version {
                throw EventStoreError(
                    code: .versionConflict,
                    message:
                        "ticket \(stream) is at version \(facts.version), the request expected \(expectedVersion)",
                    actualVersion: facts.version)
            }
            guard let payloads = try Self.decide(command, stream: stream, by: actor, facts: facts) else { return [] }
            let now = configuration.clock()
            return payloads.map { ProposedEvent(id: configuration.newID(), actor: actor, occurredAt: now, payload: $0) }
        }
    }

    struct CommandFacts: Sendable {
        var version: Int64
        var status: String
        /// Who the ticket belongs to; `nil` when it has no events.
        var parties: TicketParties?
        var agent: String? { parties?.agent }
        var isMember: Bool
        /// The message the command is about: its author and whether it is deleted.
        var message: (author: String, deleted: Bool)?
    }

    /// The facts `command` needs, read in its write transaction. With `accessOf`, that actor must
    /// reach the ticket, checked before anything else about it is read or checked: whatever the
    /// command holds (an id no backend stores), a ticket the actor does not reach answers as one
    /// that does not exist.
    private static func commandFacts(
        _ command: TicketCommand, _ ticket: borrowing TicketTransaction, accessOf actor: Actor? = nil
    ) throws -> CommandFacts {
        guard ticket.version > 0 else {
            if let actor { throw noAccessibleTicket(ticket.stream, for: actor) }
            return CommandFacts(version: 0, status: "open", parties: nil, isMember: false, message: nil)
        }
        // The message a command is about is read with the ticket's facts (one statement), if
        // its id is one a backend can store; otherwise it is refused below, after the access
        // check, as the input it is (a control character, PostgreSQL's NUL), not as a failed read.
        let messageID: String? =
            switch command {
            case .editMessage(let id, _), .deleteMessage(let id), .postMessage(let id, _, _):
                (try? requireText(id, "message id", limit: 255)) != nil ? id : nil
            default: nil
            }
        let (status, parties, message) = try ticket.commandFacts(message: messageID)
        if let actor, !(parties.map { TicketPolicy.canAccess(actor, $0) } ?? false) {
            throw noAccessibleTicket(ticket.stream, for: actor)
        }
        var facts = CommandFacts(
            version: ticket.version, status: status, parties: parties, isMember: false, message: message)
        switch command {
        case .join(let user, _), .leave(let user):
            // Checked first, like the message id above.
            try requireText(user, "user", limit: 255)
            facts.isMember = try ticket.isMember(user)
        case .editMessage(let id, _), .deleteMessage(let id), .postMessage(let id, _, _):
            try requireText(id, "message id", limit: 255)
        default:
            break
        }
        return facts
    }

    /// The pure decision: the events `command` implies in a state with these facts, `nil` when
    /// it changes nothing, or an error saying why it is refused.
    static func decide(
        _ command: TicketCommand, stream: StreamID, by actor: Actor, facts: CommandFacts
    ) throws(EventStoreError) -> [EventPayload]? {
        if case .open(let title, let brand, let creator) = command {
            guard facts.version == 0 else {
                throw EventStoreError(
                    code: .versionConflict, message: "ticket \(stream) exists already", actualVersion: facts.version)
            }
            try requireText(title, "title", limit: 200)
            try requireText(brand, "brand", limit: 255)
            try requireText(creator, "creator", limit: 255)
            return [.ticketOpened(TicketOpened(title: title, brand: brand, creator: creator))]
        }
        guard facts.version > 0 else { throw EventStoreError(code: .notFound, message: "there is no ticket \(stream)") }
        switch command {
        case .open:
            return nil  // handled above
        case .assign(let agent):
            try requireText(agent, "agent", limit: 255)
            if facts.agent == agent { return nil }
            return [.agentAssigned(AgentAssigned(agent: agent))]
        case .unassign(let agent):
            try requireText(agent, "agent", limit: 255)
            guard facts.agent == agent else {
                throw EventStoreError(code: .rejected, message: "\(agent) is not the agent assigned to \(stream)")
            }
            return [.agentUnassigned(AgentUnassigned(agent: agent))]
        case .join(let user, let role):
            try requireText(user, "user", limit: 255)
            return facts.isMember ? nil : [.memberJoined(MemberJoined(user: user, role: role))]
        case .leave(let user):
            try requireText(user, "user", limit: 255)
            return facts.isMember ? [.memberLeft(MemberLeft(user: user))] : nil
        case .postMessage(let messageID, let text, let attachments):
            try requireText(messageID, "message id", limit: 255)
            try requireText(text, "text", limit: 10_000, kind: .text)
            guard attachments.count <= 20 else {
                throw EventStoreError.invalid("a message carries at most 20 attachments")
            }
            for attachment in attachments {
                try requireText(attachment.kind, "attachment kind", limit: 50)
                try requireLink(attachment.url, "attachment url")
                if let title = attachment.title { try requireText(title, "attachment title", limit: 200) }
            }
            guard facts.message == nil else {
                throw EventStoreError(
                    code: .versionConflict, message: "message \(messageID) exists already in \(stream)")
            }
            return [.messagePosted(MessagePosted(messageID: messageID, text: text, attachments: attachments))]
        case .editMessage(let messageID, let text):
            try requireText(text, "text", limit: 10_000, kind: .text)
            guard let message = facts.message else {
                throw EventStoreError(code: .notFound, message: "\(stream) has no message \(messageID)")
            }
            guard !message.deleted else {
                throw EventStoreError(code: .rejected, message: "message \(messageID) is deleted")
            }
            guard TicketPolicy.mayEdit(messageBy: message.author, actor) else {
                throw EventStoreError(code: .rejected, message: "only the author of message \(messageID) can edit it")
            }
            return [.messageEdited(MessageEdited(messageID: messageID, text: text))]
        case .deleteMessage(let messageID):
            guard let message = facts.message else {
                throw EventStoreError(code: .notFound, message: "\(stream) has no message \(messageID)")
            }
            if message.deleted { return nil }
            guard TicketPolicy.mayDelete(messageBy: message.author, actor) else {
                throw EventStoreError(
                    code: .rejected, message: "only the author, an agent or an admin can delete message \(messageID)")
            }
            return [.messageDeleted(MessageDeleted(messageID: messageID))]
        case .changeStatus(let to, let note):
            guard TicketCommand.statuses.contains(to) else {
                throw EventStoreError(
                    code: .invalidEvent,
                    message: "'\(to)' is not a status; use one of \(TicketCommand.statuses.joined(separator: ", "))")
            }
            if let note { try requireText(note, "note", limit: 2_000, kind: .text) }
            guard to != facts.status else {
                throw EventStoreError(code: .rejected, message: "\(stream) is \(to) already")
            }
            return [.statusChanged(StatusChanged(from: facts.status, to: to, note: note))]
        case .pushDeliverable(let deliverable):
            try requireText(deliverable.deliverableID, "deliverable id", limit: 255)
            try requireText(deliverable.title, "title", limit: 200)
            try requireLink(deliverable.url, "url")
            try requireText(deliverable.kind, "kind", limit: 50)
            if let note = deliverable.note { try requireText(note, "note", limit: 2_000, kind: .text) }
            return [.deliverablePushed(deliverable)]
        }
    }

    /// ``TextRule``: not empty, at most `limit` characters, no control characters (prose may
    /// hold tabs and line breaks). A NUL or an escape sequence in a name or a message is an attack
    /// on whatever shows it.
    private static func requireText(_ text: String, _ field: String, limit: Int, kind: TextRule.Kind = .line)
        throws(EventStoreError)
    {
        try TextRule.check(text, field, limit: limit, kind: kind)
    }

    /// An absolute http or https URL with a host: what a dashboard may turn into a link.
    private static func requireLink(_ text: String, _ field: String) throws(EventStoreError) {
        try requireText(text, field, limit: 2_000)
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host?.isEmpty == false
        else {
            throw EventStoreError.invalid("\(field) must be an absolute http or https URL, not '\(text.prefix(100))'")
        }
    }
}
