/// Who may do what to a ticket: the one set of rules behind the HTTP API (callers with a verified
/// token) and behind what people do in Stream Chat (webhooks), so neither way in lets anyone say
/// more than the other.
///
/// | who | reaches |
/// |---|---|
/// | admin | every ticket |
/// | agent | the tickets assigned to them |
/// | brand / creator | their own tickets (the ticket's `brand` / `creator`) |
///
/// On a ticket they reach, anyone may post, change the status and push deliverables; only the
/// author edits a message; the author, an agent or an admin deletes one; only admins assign.
public enum TicketPolicy {
    /// Whether `actor` reaches `ticket` at all.
    public static func canAccess(_ actor: Actor, _ ticket: TicketSummary) -> Bool {
        canAccess(actor, ticket.parties)
    }

    /// The same rule, by the ticket's parties alone.
    public static func canAccess(_ actor: Actor, _ ticket: TicketParties) -> Bool {
        switch actor.role {
        case .admin: true
        case .agent: ticket.agent == actor.id
        case .brand: ticket.brand == actor.id
        case .creator: ticket.creator == actor.id
        case .system: false
        }
    }

    /// The role a user holds on `ticket` by the ticket itself: its brand, its creator or its
    /// assigned agent; `nil` for anyone else.
    public static func role(of user: String, on ticket: TicketSummary) -> Actor.Role? {
        if user == ticket.brand { return .brand }
        if user == ticket.creator { return .creator }
        if user == ticket.agent { return .agent }
        return nil
    }

    /// Whether `actor` may delete a message written by `author`.
    public static func mayDelete(messageBy author: String, _ actor: Actor) -> Bool {
        author == actor.id || actor.role == .admin || actor.role == .agent
    }

    /// Whether `actor` may edit a message written by `author`.
    public static func mayEdit(messageBy author: String, _ actor: Actor) -> Bool {
        author == actor.id
    }

    /// Whether `actor` may assign or unassign agents.
    public static func mayAssign(_ actor: Actor) -> Bool {
        actor.role == .admin
    }

    /// Whether `actor` may delete every message of a ticket at once (a truncation): those who may
    /// delete anyone's message.
    public static func mayDeleteAllMessages(_ actor: Actor) -> Bool {
        actor.role == .admin || actor.role == .agent
    }
}
