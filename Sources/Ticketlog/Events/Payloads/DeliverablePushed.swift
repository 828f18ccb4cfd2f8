/// A deliverable (a draft, a post, a video...) was pushed to the ticket.
public struct DeliverablePushed: Hashable, Sendable, Codable {
    public var deliverableID: String
    public var title: String
    public var url: String
    public var kind: String
    public var note: String?

    public init(deliverableID: String, title: String, url: String, kind: String, note: String? = nil) {
        self.deliverableID = deliverableID
        self.title = title
        self.url = url
        self.kind = kind
        self.note = note
    }

    private enum CodingKeys: String, CodingKey {
        case deliverableID = "deliverableId"
        case title, url, kind, note
    }
}
