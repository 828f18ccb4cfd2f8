/// The ticket's status changed, e.g. from `open` to `in_review`.
public struct StatusChanged: Hashable, Sendable, Codable {
    public var from: String
    public var to: String
    public var note: String?

    public init(from: String, to: String, note: String? = nil) {
        self.from = from
        self.to = to
        self.note = note
    }
}
