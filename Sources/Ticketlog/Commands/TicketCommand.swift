import Foundation

/// Something a person asks of a ticket. ``EventStore/execute(_:on:by:expectedVersion:requiringAccess:)`` checks
/// it against the ticket's current state and, when it holds, appends the events it implies.
public enum TicketCommand: Hashable, Sendable {
    /// Open a new ticket. Refused when the stream exists.
    case open(title: String, brand: String, creator: String)
    case assign(agent: String)
    case unassign(agent: String)
    /// Add `user` to the channel. A member already present stays as they are (no event).
    case join(user: String, role: Actor.Role)
    /// Take `user` out of the channel. Someone not present: nothing happens (no event).
    case leave(user: String)
    case postMessage(messageID: String, text: String, attachments: [MessagePosted.Attachment])
    /// Only the author may edit, and not a deleted message.
    case editMessage(messageID: String, text: String)
    /// The author, an agent or an admin may delete.
    case deleteMessage(messageID: String)
    case changeStatus(to: String, note: String?)
    case pushDeliverable(DeliverablePushed)

    /// The statuses a ticket can be in.
    public static let statuses: [String] = [
        "open", "in_progress", "in_review", "changes_requested", "resolved", "closed",
    ]
}

/// What executing a command did.
public struct CommandOutcome: Hashable, Sendable {
    /// The events appended; empty when the command changed nothing (a second join).
    public var events: [RecordedEvent]
    /// The stream's version after the command.
    public var streamVersion: Int64
    /// `true` when every event was stored already (the same event ids appended again): nothing
    /// was written and ``events`` are the stored ones.
    public var wasAlreadyStored = false

    package init(events: [RecordedEvent], streamVersion: Int64, wasAlreadyStored: Bool = false) {
        self.events = events
        self.streamVersion = streamVersion
        self.wasAlreadyStored = wasAlreadyStored
    }
}
