import Ticketlog

/// Who is calling, from their bearer token: a user id and the role they act in.
public struct Caller: Hashable, Sendable {
    public var id: String
    public var role: Actor.Role

    public init(id: String, role: Actor.Role) {
        self.id = id
        self.role = role
    }

    /// The caller as the actor of the events they cause.
    var actor: Actor { Actor(id: id, role: role) }
}
