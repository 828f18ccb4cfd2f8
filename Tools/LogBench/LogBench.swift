// A first measurement of the core log: batched appends, concurrent single appends (group
// commit), scan, verify and bytes per event, on a synthetic corpus. `make bench-log` runs it.
// The full harness with baselines (issue 6) builds on this.
import Foundation
import Ticketlog

@main
struct LogBench {
    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        let events = arguments.first.flatMap(Int.init) ?? 100_000
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ticketlog-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var generator = Corpus(seed: 42)
        let corpus = generator.events(count: events, tickets: max(1, events / 100))
        let rawJSON = try corpus.reduce(0) { $0 + (try JSONEncoder().encode(Wrapper($1.1)).count) }
        print("corpus: \(events) events over \(max(1, events / 100)) tickets, mean payload+envelope JSON ~\(rawJSON / events) B")

        // 1. Batched append: 1000 events at a time, NORMAL. The 1000 span many streams; their
        //    per-stream appends are submitted together, and group commit writes each batch in
        //    one transaction.
        var normal = EventStore.Configuration()
        normal.durability = .normal
        let batchedPath = directory.appendingPathComponent("batched.sqlite").path
        let store = try EventStore(path: batchedPath, configuration: normal)
        let batchedStart = ContinuousClock.now
        var index = 0
        while index < corpus.count {
            // Group consecutive events of one batch by stream, as a backend importing would.
            let slice = corpus[index..<min(index + 1000, corpus.count)]
            let byStream = Dictionary(grouping: slice, by: \.0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (stream, items) in byStream {
                    group.addTask { try await store.append(items.map(\.1), to: stream) }
                }
                try await group.waitForAll()
            }
            index += 1000
        }
        let batched = ContinuousClock.now - batchedStart
        report("batched append (1000/batch, NORMAL)", events, batched)

        let scanStart = ContinuousClock.now
        var position: Int64 = 1
        var scanned = 0
        while true {
            let page = try await store.readAll(from: position, limit: 5_000)
            guard let last = page.last else { break }
            scanned += page.count
            position = last.position + 1
        }
        report("read all (decompress + decode)", scanned, ContinuousClock.now - scanStart)

        let verifyStart = ContinuousClock.now
        let verification = try await store.verify()
        report("verify (chain + decode)", Int(verification.eventsVerified), ContinuousClock.now - verifyStart)

        let size = try FileManager.default.attributesOfItem(atPath: batchedPath)[.size] as? Int ?? 0
        let wal = (try? FileManager.default.attributesOfItem(atPath: batchedPath + "-wal")[.size] as? Int) ?? 0
        print("file: \((size + wal) / events) B/event (db \(size) B + wal \(wal) B); dictionaries: \(try await store.dictionaryUsage())")

        // 2. 16 concurrent appenders, one event per append, FULL: group commit at work.
        var full = EventStore.Configuration()
        full.durability = .full
        let concurrent = try EventStore(path: directory.appendingPathComponent("concurrent.sqlite").path, configuration: full)
        let singles = min(events, 20_000)
        let concurrentStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var item = worker
                    while item < singles {
                        try await concurrent.append(corpus[item].1, to: corpus[item].0)
                        item += 16
                    }
                }
            }
            try await group.waitForAll()
        }
        report("16 concurrent single appends (FULL)", singles, ContinuousClock.now - concurrentStart)
    }

    static func report(_ label: String, _ count: Int, _ duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let rate = Double(count) / seconds
        print("\(label.padding(toLength: 42, withPad: " ", startingAt: 0)) \(String(format: "%10.0f", rate)) events/s  (\(count) in \(String(format: "%.2f", seconds)) s)")
    }
}

/// Encodable stand-in to size the raw JSON of an event.
struct Wrapper: Encodable {
    var event: ProposedEvent
    init(_ event: ProposedEvent) { self.event = event }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        let recorded = RecordedEvent(
            position: 1, stream: .ticket("1")!, version: 1, id: event.id, actor: event.actor, occurredAt: event.occurredAt,
            recordedAt: event.occurredAt, origin: event.origin, correlationID: nil, causationID: nil, payload: event.payload)
        try container.encode(recorded)
    }
}

/// A seeded support-desk corpus: ~80% messages, the rest joins, leaves, status changes, deliverables.
struct Corpus {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func random(_ bound: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(bound))
    }

    static let words = """
        the draft cut video review brand creator deadline friday please update thanks approved changes \
        color logo music intro outro caption posted scheduled link upload final version feedback budget \
        contract campaign story reel launch spring summer product shot angle lighting script voiceover
        """.split(separator: " ").map(String.init)

    mutating func text() -> String {
        let length = 20 + random(580)
        var text = ""
        while text.count < length { text += (text.isEmpty ? "" : " ") + Self.words[random(Self.words.count)] }
        return String(text.prefix(length))
    }

    mutating func events(count: Int, tickets: Int) -> [(StreamID, ProposedEvent)] {
        var opened = Set<Int>()
        var result: [(StreamID, ProposedEvent)] = []
        result.reserveCapacity(count)
        let start: Int64 = 1_795_000_000_000_000
        let statuses = ["open", "in_progress", "in_review", "resolved"]
        while result.count < count {
            let ticket = random(tickets)
            let stream = StreamID.ticket("\(ticket)")!
            let at = Timestamp(microsecondsSinceEpoch: start + Int64(result.count) * 1_000_000)
            let payload: EventPayload
            let actor: Actor
            if opened.insert(ticket).inserted {
                actor = Actor(id: "brand-\(ticket % 50)", role: .brand)
                payload = .ticketOpened(TicketOpened(title: text().prefix(60).description, brand: actor.id, creator: "creator-\(ticket % 400)"))
            } else {
                let roll = random(100)
                let roles: [Actor.Role] = [.agent, .brand, .creator]
                actor = Actor(id: "user-\(random(2_000))", role: roles[random(3)])
                switch roll {
                case 0..<80: payload = .messagePosted(MessagePosted(messageID: "m-\(result.count)", text: text()))
                case 80..<87: payload = .memberJoined(MemberJoined(user: actor.id, role: actor.role))
                case 87..<90: payload = .memberLeft(MemberLeft(user: actor.id))
                case 90..<96:
                    let from = random(3)
                    payload = .statusChanged(StatusChanged(from: statuses[from], to: statuses[from + 1]))
                default:
                    payload = .deliverablePushed(DeliverablePushed(
                        deliverableID: "d-\(result.count)", title: text().prefix(40).description,
                        url: "https://cdn.example.com/d/\(result.count).mp4", kind: "video"))
                }
            }
            result.append((stream, ProposedEvent(actor: actor, occurredAt: at, payload: payload)))
        }
        return result
    }
}
