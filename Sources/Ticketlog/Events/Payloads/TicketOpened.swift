/// A ticket was opened: the first event of every ticket stream.
public struct TicketOpened: Hashable, Sendable, Codable {
    public var title: String
    /// The brand the ticket belongs to (a user id with the `brand` role).
    public var brand: String
    /// The creator the ticket is with (a user id with the `creator` role).
    public var creator: String

    public init(title: String, brand: String, creator: String) {
        self.title = title
        self.brand = brand
        self.creator = creator
    }
}
