import Foundation
import Ticketlog

/// Realistic, seeded support-desk traffic: tickets opened by brands for creators, assigned to
/// agents, discussed, delivered, reviewed and resolved, interleaved in time as on a real desk.
///
/// The same seed and configuration always give the same events, ids included. Roughly 80% of
/// events are messages (20–600 characters); the rest are joins, leaves, assignments, status
/// changes, deliverables, edits and deletes.
public struct SyntheticDesk: Sendable {
    public struct Configuration: Sendable {
        public var tickets: Int
        public var seed: UInt64
        /// Mean messages per ticket (the actual count varies per ticket, 20% to 180% of it).
        public var meanMessagesPerTicket: Int
        /// When the first ticket opens.
        public var start: Timestamp
        /// How many tickets are open at once: the interleaving of the output.
        public var concurrentTickets: Int
        /// The first ticket's number (`ticket-N`); the others follow it.
        public var firstTicket: Int

        public init(
            tickets: Int = 1_000, seed: UInt64 = 1, meanMessagesPerTicket: Int = 80,
            start: Timestamp = Timestamp(microsecondsSinceEpoch: 1_790_000_000_000_000), concurrentTickets: Int = 200,
            firstTicket: Int = 0
        ) {
            self.tickets = tickets
            self.seed = seed
            self.meanMessagesPerTicket = meanMessagesPerTicket
            self.start = start
            self.concurrentTickets = concurrentTickets
            self.firstTicket = firstTicket
        }
    }

    /// One generated event and the ticket stream it belongs to.
    public struct Item: Sendable {
        public var stream: StreamID
        public var event: ProposedEvent
    }

    public let configuration: Configuration

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// All events, in the order a desk would produce them. Lazily generated: memory stays flat.
    public func events() -> Events { Events(configuration: configuration) }

    /// The generated events as a sequence.
    public struct Events: Sequence, Sendable {
        let configuration: Configuration
        public func makeIterator() -> Iterator { Iterator(configuration: configuration) }
    }

    /// Runs up to `concurrentTickets` ticket scripts at once and picks the next event from a
    /// random open one, so tickets interleave.
    public struct Iterator: IteratorProtocol {
        private var random: SplitMix
        private let configuration: Configuration
        private var open: [TicketScript] = []
        private var nextTicket = 0
        private var clock: Int64
        private var eventNumber: UInt64 = 0

        init(configuration: Configuration) {
            self.configuration = configuration
            random = SplitMix(seed: configuration.seed)
            clock = configuration.start.microsecondsSinceEpoch
        }

        public mutating func next() -> Item? {
            while open.count < configuration.concurrentTickets && nextTicket < configuration.tickets {
                open.append(
                    TicketScript(
                        number: configuration.firstTicket + nextTicket,
                        meanMessages: configuration.meanMessagesPerTicket, random: &random)
                )
                nextTicket += 1
            }
            guard !open.isEmpty else { return nil }
            let index = random.next(below: open.count)
            clock += Int64(random.next(below: 40_000_000)) + 1
            guard let (actor, payload) = open[index].next(random: &random) else {
                open.swapAt(index, open.count - 1)
                open.removeLast()
                return next()
            }
            eventNumber += 1
            let id = SplitMix.uuid(seed: configuration.seed, number: eventNumber, at: clock)
            return Item(
                stream: open[index].stream,
                event: ProposedEvent(
                    id: id, actor: actor, occurredAt: Timestamp(microsecondsSinceEpoch: clock), payload: payload))
        }
    }
}
