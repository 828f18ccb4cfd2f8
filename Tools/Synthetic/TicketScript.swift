import Foundation
import Ticketlog

/// The life of one ticket, step by step: opened, assigned, joined, discussed (with status
/// changes, deliverables, edits and deletes), resolved, left.
struct TicketScript {
    let stream: StreamID
    private let brand: Actor
    private let creator: Actor
    private let agent: Actor
    private let admin: Actor
    private var phase = Phase.open
    private var messagesLeft: Int
    private var posted: [String] = []
    private var status = "open"
    private var messageNumber = 0
    private let number: Int

    private enum Phase {
        case open, assign, joinBrand, joinCreator, joinAgent, talk, resolve, leave, done
    }

    init(number: Int, meanMessages: Int, random: inout SplitMix) {
        self.number = number
        stream = StreamID.ticket("\(number)")!
        brand = Actor(id: "brand-\(random.next(below: 60))", role: .brand)
        creator = Actor(id: "creator-\(random.next(below: 800))", role: .creator)
        agent = Actor(id: "agent-\(random.next(below: 25))", role: .agent)
        admin = Actor(id: "admin-\(random.next(below: 3))", role: .admin)
        let low = max(1, meanMessages / 5)
        messagesLeft = low + random.next(below: max(1, meanMessages * 9 / 5 - low + 1))
    }

    mutating func next(random: inout SplitMix) -> (Actor, EventPayload)? {
        switch phase {
        case .open:
            phase = .assign
            return (
                brand, .ticketOpened(TicketOpened(title: Words.title(&random), brand: brand.id, creator: creator.id))
            )
        case .assign:
            phase = .joinBrand
            return (admin, .agentAssigned(AgentAssigned(agent: agent.id)))
        case .joinBrand:
            phase = .joinCreator
            return (brand, .memberJoined(MemberJoined(user: brand.id, role: .brand)))
        case .joinCreator:
            phase = .joinAgent
            return (creator, .memberJoined(MemberJoined(user: creator.id, role: .creator)))
        case .joinAgent:
            phase = .talk
            return (agent, .memberJoined(MemberJoined(user: agent.id, role: .agent)))
        case .talk:
            if messagesLeft == 0 {
                phase = .resolve
                return next(random: &random)
            }
            return talk(&random)
        case .resolve:
            phase = .leave
            let from = status
            status = "resolved"
            return (agent, .statusChanged(StatusChanged(from: from, to: "resolved", note: "approved by the brand")))
        case .leave:
            phase = .done
            return (agent, .memberLeft(MemberLeft(user: agent.id)))
        case .done:
            return nil
        }
    }

    /// Mostly messages, sometimes a deliverable, a status change, an edit, a delete, or someone
    /// leaving and coming back.
    private mutating func talk(_ random: inout SplitMix) -> (Actor, EventPayload) {
        let speakers = [brand, creator, agent]
        let roll = random.next(below: 1_000)
        switch roll {
        case 0..<860:
            messagesLeft -= 1
            messageNumber += 1
            let id = "m-\(number)-\(messageNumber)"
            posted.append(id)
            let attachments =
                random.next(below: 20) == 0
                ? [
                    MessagePosted.Attachment(
                        kind: "image", url: "https://cdn.example.com/\(id).jpg", title: "reference")
                ] : []
            return (
                speakers[random.next(below: 3)],
                .messagePosted(MessagePosted(messageID: id, text: Words.message(&random), attachments: attachments))
            )
        case 860..<900:
            return (
                creator,
                .deliverablePushed(
                    DeliverablePushed(
                        deliverableID: "d-\(number)-\(messageNumber)", title: Words.title(&random),
                        url: "https://cdn.example.com/deliverables/\(number)-\(messageNumber).mp4",
                        kind: ["video", "photo", "post", "story"][random.next(below: 4)],
                        note: random.next(below: 2) == 0 ? nil : Words.message(&random, maximum: 120)))
            )
        case 900..<940:
            let next = ["in_progress", "in_review", "changes_requested", "in_progress"][random.next(below: 4)]
            let from = status
            status = next
            return (agent, .statusChanged(StatusChanged(from: from, to: next)))
        case 940..<975 where !posted.isEmpty:
            let id = posted[random.next(below: posted.count)]
            return (
                speakers[random.next(below: 3)],
                .messageEdited(MessageEdited(messageID: id, text: Words.message(&random)))
            )
        case 975..<985 where !posted.isEmpty:
            return (agent, .messageDeleted(MessageDeleted(messageID: posted[random.next(below: posted.count)])))
        case 985..<993:
            return (creator, .memberLeft(MemberLeft(user: creator.id)))
        default:
            return (creator, .memberJoined(MemberJoined(user: creator.id, role: .creator)))
        }
    }
}

/// Seeded SplitMix64: fast, good enough for test data, identical on every platform.
public struct SplitMix: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(max(1, bound)))
    }

    /// The id the library would mint for an event at `clock` (a time-ordered UUID:
    /// ``UUID/timeOrdered(at:)``), its random bits determined by the seed and the event number.
    static func uuid(seed: UInt64, number: UInt64, at clock: Int64) -> UUID {
        var generator = SplitMix(seed: seed ^ (number &* 0xD6E8_FEB8_6659_FD93))
        return .timeOrdered(at: Timestamp(microsecondsSinceEpoch: clock), random: generator.next())
    }
}
