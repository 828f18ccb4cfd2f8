import Synthetic
import Ticketlog

/// What the writer appends: the synthetic desk cut into numbered appends of 1–4 consecutive
/// events of one ticket, each ticket's appends given to one of four workers, in order. The
/// driver generates the same appends from the same seed, so an acknowledgement names an
/// append by its number and the driver knows the event ids it must find.
struct Workload {
    static let workers = 4

    struct Batch {
        var number: Int
        var stream: StreamID
        var events: [ProposedEvent]
        var worker: Int
    }

    let seed: UInt64

    /// All appends in number order (lazily: a desk of 20,000 tickets, ~460k events).
    func batches() -> some Sequence<Batch> {
        var desk = SyntheticDesk(.init(tickets: 20_000, seed: seed, meanMessagesPerTicket: 20)).events().makeIterator()
        var random = SplitMix(seed: seed ^ 0x5eed)
        var pending = desk.next()
        var number = -1
        return AnySequence {
            AnyIterator { () -> Batch? in
                guard let first = pending else { return nil }
                var events = [first.event]
                let size = 1 + random.next(below: 4)
                pending = desk.next()
                while events.count < size, let next = pending, next.stream == first.stream {
                    events.append(next.event)
                    pending = desk.next()
                }
                number += 1
                return Batch(
                    number: number, stream: first.stream, events: events, worker: Self.worker(of: first.stream))
            }
        }
    }

    /// The worker of a ticket: FNV-1a of its name, so every run agrees.
    static func worker(of stream: StreamID) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in stream.rawValue.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(workers))
    }
}
