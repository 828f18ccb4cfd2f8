/// Who caused an event: a user id and the role they acted in.
public struct Actor: Hashable, Sendable, Codable {
    /// The roles of the ticket desk. `system` is the engine itself or an integration.
    public enum Role: String, Hashable, Sendable, Codable, CaseIterable {
        case admin
        case agent
        case brand
        case creator
        case system
    }

    public var id: String
    public var role: Role

    public init(id: String, role: Role) {
        self.id = id
        self.role = role
    }

    /// The engine itself.
    public static let system = Actor(id: "ticketlog", role: .system)
}
