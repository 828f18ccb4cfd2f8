extension EventPayload {
    /// The payload with each personal field (issue 17: text written by a person) replaced by
    /// `transform(path, value)`: message text and attachment URLs and titles, edits,
    /// deliverable titles, URLs and notes, status notes. Identifiers, kinds, statuses, user ids
    /// and ticket titles (a brand's subject line, which ticket lists and summaries show) stay as
    /// they are; so does the payload of a type this build does not know (it cannot tell which
    /// fields are personal).
    func mappingPersonalFields(_ transform: (_ path: String, _ value: String) throws -> String) rethrows
        -> EventPayload
    {
        switch self {
        case .messagePosted(var posted):
            posted.text = try transform("text", posted.text)
            for index in posted.attachments.indices {
                posted.attachments[index].url = try transform(
                    "attachments.\(index).url", posted.attachments[index].url)
                if let title = posted.attachments[index].title {
                    posted.attachments[index].title = try transform("attachments.\(index).title", title)
                }
            }
            return .messagePosted(posted)
        case .messageEdited(var edited):
            edited.text = try transform("text", edited.text)
            return .messageEdited(edited)
        case .statusChanged(var changed):
            if let note = changed.note { changed.note = try transform("note", note) }
            return .statusChanged(changed)
        case .deliverablePushed(var pushed):
            pushed.title = try transform("title", pushed.title)
            pushed.url = try transform("url", pushed.url)
            if let note = pushed.note { pushed.note = try transform("note", note) }
            return .deliverablePushed(pushed)
        case .ticketOpened, .agentAssigned, .agentUnassigned, .memberJoined, .memberLeft, .messageDeleted,
            .erasurePerformed, .unknown:
            return self
        }
    }
}
