/// A user joined the ticket's channel.
public struct MemberJoined: Hashable, Sendable, Codable {
    public var user: String
    public var role: Actor.Role

    public init(user: String, role: Actor.Role) {
        self.user = user
        self.role = role
    }
}

/// A user left the ticket's channel (or was removed from it).
public struct MemberLeft: Hashable, Sendable, Codable {
    public var user: String
    public init(user: String) { self.user = user }
}
