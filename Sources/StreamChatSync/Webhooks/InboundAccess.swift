import Ticketlog

/// What a Stream user may make the log say about one ticket: `TicketPolicy`, the rules of the
/// HTTP API, applied to changes that come in through Stream.
///
/// Stream knows nothing of our roles, and a Stream client can set its own custom fields, so
/// nothing in a webhook decides who someone is. A Stream user acts on a ticket in the role the
/// log gives them there: the ticket's brand, creator or assigned agent, or an admin who joined
/// the ticket through the API (their membership records the role their token proved). Anyone
/// else has no role and may change nothing.
///
/// Changes requested with the app's API secret (`request_info.type: server`) are not checked:
/// whoever holds that secret can sign webhooks too, so they are as trusted as the signature.
struct InboundAccess: Sendable {
    let ticket: TicketSummary?
    /// Members of the ticket's channel and the role each joined with.
    let memberRoles: [String: Actor.Role]
    /// The change was requested with the API secret.
    let serverSide: Bool

    /// The role `user` acts in on the ticket through Stream; `nil` when they have none.
    func role(of user: String) -> Actor.Role? {
        guard let ticket else { return nil }
        if let role = TicketPolicy.role(of: user, on: ticket) { return role }
        if memberRoles[user] == .admin { return .admin }
        return nil
    }

    /// Why `event` may not enter the log; `nil` when it may. `messageAuthor` is the author of
    /// the message an edit or delete is about.
    func refusal(_ event: ProposedEvent, messageAuthor: String?) -> String? {
        if serverSide { return nil }
        let who = event.actor.id
        let stream = ticket?.stream.rawValue ?? "the ticket"
        guard let role = role(of: who) else {
            // Leaving is one's own business, whatever one's role (an agent no longer assigned
            // still leaves the channel).
            if case .memberLeft(let left) = event.payload, left.user == who { return nil }
            return
                "\(who) has no role on \(stream) (not its brand, creator or assigned agent, nor an admin who joined it)"
        }
        let actor = Actor(id: who, role: role)
        switch event.payload {
        case .messagePosted, .statusChanged, .deliverablePushed:
            return nil
        case .messageEdited(let edited):
            guard let messageAuthor, TicketPolicy.mayEdit(messageBy: messageAuthor, actor) else {
                return
                    "\(who) may not edit message \(edited.messageID) of \(messageAuthor ?? "someone else"): only its author may"
            }
            return nil
        case .messageDeleted(let deleted):
            guard let messageAuthor, TicketPolicy.mayDelete(messageBy: messageAuthor, actor) else {
                return
                    "\(who) (\(role.rawValue)) may not delete message \(deleted.messageID) of \(messageAuthor ?? "someone else"): only its author, an agent or an admin may"
            }
            return nil
        case .memberJoined(let joined):
            guard joined.user == who || role == .admin else {
                return "\(who) may not add \(joined.user) to \(stream): only admins add others"
            }
            return nil
        case .memberLeft(let left):
            guard left.user == who || role == .admin else {
                return "\(who) may not remove \(left.user) from \(stream): only admins remove others"
            }
            return nil
        case .agentAssigned, .agentUnassigned:
            guard TicketPolicy.mayAssign(actor) else {
                return "\(who) (\(role.rawValue)) may not assign agents: only admins may"
            }
            return nil
        case .ticketOpened, .erasurePerformed, .unknown:
            return "\(event.type.rawValue) does not come from Stream"
        }
    }

    /// Why `actor` may not truncate the ticket's channel (delete every message at once); `nil`
    /// when they may.
    func refusalToTruncate(by actor: Actor) -> String? {
        if serverSide { return nil }
        guard let role = role(of: actor.id), TicketPolicy.mayDeleteAllMessages(Actor(id: actor.id, role: role)) else {
            return
                "\(actor.id) may not truncate \(ticket?.stream.rawValue ?? "the channel"): only an agent or an admin deletes everyone's messages"
        }
        return nil
    }
}
