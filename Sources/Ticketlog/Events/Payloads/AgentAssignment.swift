/// An agent was assigned to a ticket; they may now read and write it.
public struct AgentAssigned: Hashable, Sendable, Codable {
    public var agent: String
    public init(agent: String) { self.agent = agent }
}

/// An agent was taken off a ticket.
public struct AgentUnassigned: Hashable, Sendable, Codable {
    public var agent: String
    public init(agent: String) { self.agent = agent }
}
