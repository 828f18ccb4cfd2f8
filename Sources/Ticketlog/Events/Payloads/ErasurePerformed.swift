/// Personal content was erased (issue 17): the content keys of a data subject, a ticket or the
/// months before a date were destroyed, so the fields sealed with them read as erased from now
/// on. Recorded in the stream ``StreamID/erasures``; it names what was erased and why, never the
/// content.
public struct ErasurePerformed: Hashable, Sendable, Codable {
    /// The data subject whose content was erased, when the erasure was for a person.
    public var subject: String?
    /// The ticket whose content was erased, when the erasure was for a ticket.
    public var ticket: String?
    /// Content of the months before this one (`YYYY-MM`, UTC) was erased: a retention cut.
    public var before: String?
    /// Who asked for it (a person, a policy).
    public var requestedBy: String
    /// Why, in words (a request reference, a retention rule).
    public var reason: String
    /// The ids of the content keys destroyed: what a restored backup must destroy too.
    public var keys: [String]

    public init(
        subject: String? = nil, ticket: String? = nil, before: String? = nil, requestedBy: String, reason: String,
        keys: [String]
    ) {
        self.subject = subject
        self.ticket = ticket
        self.before = before
        self.requestedBy = requestedBy
        self.reason = reason
        self.keys = keys
    }
}
