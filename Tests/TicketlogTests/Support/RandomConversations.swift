import Foundation
import Synthetic

@testable import Ticketlog

typealias SeededGenerator = SplitMix

/// Generated support-desk histories that include the awkward cases: double joins, leaves of
/// non-members, edits and deletes of unknown or deleted messages, repeated message ids,
/// unassigning someone else, unknown event types, tickets without `ticket.opened`.
struct RandomConversations {
    var random: SeededGenerator
    var nextID: UInt64 = 0
    var time: Int64 = 1_795_000_000_000_000

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    static let users: [(String, Actor.Role)] = [
        ("ada", .admin), ("sam", .agent), ("lee", .agent), ("acme", .brand), ("kim", .creator), ("jo", .creator),
    ]

    mutating func events(streams: Int, count: Int) -> [(StreamID, ProposedEvent)] {
        var messageIDs: [Int: [String]] = [:]
        var opened = Set<Int>()
        var result: [(StreamID, ProposedEvent)] = []
        while result.count < count {
            let ticket = Int.random(in: 0..<streams, using: &random)
            let (user, role) = Self.users.randomElement(using: &random)!
            let actor = Actor(id: user, role: role)
            let other = Self.users.randomElement(using: &random)!
            let known = messageIDs[ticket, default: []]
            time += Int64.random(in: 0...90_000_000, using: &random)
            let payload: EventPayload
            if !opened.contains(ticket) && Int.random(in: 0..<10, using: &random) > 0 {
                opened.insert(ticket)
                payload = .ticketOpened(TicketOpened(title: "Ticket \(ticket)", brand: "acme", creator: "kim"))
            } else {
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<15: payload = .memberJoined(MemberJoined(user: other.0, role: other.1))
                case 15..<22: payload = .memberLeft(MemberLeft(user: other.0))
                case 22..<60:
                    let reuse = !known.isEmpty && Int.random(in: 0..<20, using: &random) == 0
                    let id = reuse ? known.randomElement(using: &random)! : "m-\(nextID)"
                    nextID += 1
                    messageIDs[ticket, default: []].append(id)
                    let attachments =
                        Int.random(in: 0..<5, using: &random) == 0
                        ? [MessagePosted.Attachment(kind: "image", url: "https://cdn.example.com/\(id).png")] : []
                    payload = .messagePosted(
                        MessagePosted(messageID: id, text: "text of \(id)", attachments: attachments))
                case 60..<70:
                    let id = known.randomElement(using: &random) ?? "m-unknown"
                    payload = .messageEdited(MessageEdited(messageID: id, text: "edited \(id) at \(time)"))
                case 70..<76:
                    let id =
                        Int.random(in: 0..<4, using: &random) == 0
                        ? "m-unknown" : (known.randomElement(using: &random) ?? "m-none")
                    payload = .messageDeleted(MessageDeleted(messageID: id))
                case 76..<84:
                    let statuses = ["open", "in_progress", "in_review", "resolved"]
                    payload = .statusChanged(
                        StatusChanged(
                            from: statuses.randomElement(using: &random)!, to: statuses.randomElement(using: &random)!))
                case 84..<89:
                    payload = .agentAssigned(AgentAssigned(agent: ["sam", "lee"].randomElement(using: &random)!))
                case 89..<92:
                    payload = .agentUnassigned(AgentUnassigned(agent: ["sam", "lee"].randomElement(using: &random)!))
                case 92..<98:
                    payload = .deliverablePushed(
                        DeliverablePushed(
                            deliverableID: "d-\(nextID)", title: "Draft", url: "https://cdn.example.com/d.mp4",
                            kind: "video"))
                    nextID += 1
                default:
                    payload = .unknown(type: EventType(rawValue: "poll.created"), payload: .object(["q": .string("?")]))
                }
            }
            nextID += 1
            let id = UUID(uuidString: String(format: "00000000-0000-4000-8000-%012llx", nextID))!
            result.append(
                (
                    .ticket("\(ticket)")!,
                    ProposedEvent(
                        id: id, actor: actor, occurredAt: Timestamp(microsecondsSinceEpoch: time), payload: payload)
                ))
        }
        return result
    }
}
