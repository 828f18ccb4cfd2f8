import Ticketlog

/// Who may touch which ticket: admins any; agents the tickets assigned to them; brands and
/// creators their own (the ticket's `brand` / `creator`). Nobody else reads or writes a ticket.
enum AccessPolicy {
    static func canAccess(_ caller: Caller, _ ticket: TicketSummary) -> Bool {
        TicketPolicy.canAccess(caller.actor, ticket)
    }

    /// The filter listing the tickets `caller` may see.
    static func filter(for caller: Caller) -> TicketFilter {
        switch caller.role {
        case .admin: .all
        case .agent: TicketFilter(agent: caller.id)
        case .brand: TicketFilter(brand: caller.id)
        case .creator, .system: TicketFilter(creator: caller.id)
        }
    }

    /// The ticket, when it exists and `caller` may access it; otherwise 404, the same answer
    /// whether the ticket does not exist or is someone else's, so a stranger cannot tell which
    /// ticket ids are taken.
    static func ticket(_ stream: StreamID, for caller: Caller, in store: EventStore) async throws -> TicketSummary {
        guard let ticket = try await store.ticketSummary(stream), canAccess(caller, ticket) else {
            throw notFound(stream, for: caller)
        }
        return ticket
    }

    /// The one answer about a ticket `caller` may not see, whether or not it exists.
    private static func notFound(_ stream: StreamID, for caller: Caller) -> APIError {
        APIError(EventStore.noAccessibleTicket(stream, for: caller.actor))
    }

    /// Refuses `caller` as ``ticket(_:for:in:)`` does, reading only who the ticket belongs to
    /// (not its counts), with its content mark from the same snapshot.
    @discardableResult
    static func access(_ stream: StreamID, for caller: Caller, in store: EventStore) async throws
        -> TicketContentMark?
    {
        guard let (parties, mark) = try await store.ticketAccess(stream),
            TicketPolicy.canAccess(caller.actor, parties)
        else { throw notFound(stream, for: caller) }
        return mark
    }

    /// Whether `event` can change who may access its ticket (which comes from its assignment
    /// and ownership): a live feed decides access again after such an event.
    static func mayChangeAccess(_ event: RecordedEvent) -> Bool {
        [.agentAssigned, .agentUnassigned, .ticketOpened].contains(event.type)
    }

    static func requireAdmin(_ caller: Caller, to action: String) throws {
        guard caller.role == .admin else {
            throw APIError(.forbidden, code: "forbidden", "only admins can \(action)")
        }
    }
}
