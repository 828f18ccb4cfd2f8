import Foundation
import Synthetic
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// Responses written without JSONEncoder are the bytes JSONEncoder would write.
@Suite(.timeLimit(.minutes(3))) struct ResponseEncodingTests {
    static func randomMessage(_ random: inout SplitMix) -> TicketState.Message {
        func text() -> String { CanonicalWriterTests.randomString(&random) }
        let role = Actor.Role.allCases[Int.random(in: 0..<Actor.Role.allCases.count, using: &random)]
        let posted = MessagePosted(
            messageID: text(), text: text(),
            attachments: (0..<Int.random(in: 0...2, using: &random)).map { _ in
                MessagePosted.Attachment(kind: text(), url: text(), title: Bool.random(using: &random) ? text() : nil)
            })
        let event = RecordedEvent(
            position: Int64.random(in: 1...Int64.max, using: &random), stream: .ticket("1")!, version: 1, id: UUID(),
            actor: Actor(id: text(), role: role),
            occurredAt: Timestamp(microsecondsSinceEpoch: Int64.random(in: 0...4_000_000_000_000_000, using: &random)),
            recordedAt: Timestamp(microsecondsSinceEpoch: 0), origin: .local, correlationID: nil, causationID: nil,
            payload: .messagePosted(posted))
        var message = TicketState.Message(posted: posted, event: event)
        if Bool.random(using: &random) {
            message.edits = Int.random(in: 1...1_000, using: &random)
            message.editedAt = Timestamp(
                microsecondsSinceEpoch: Int64.random(in: 0...4_000_000_000_000_000, using: &random))
        }
        if Int.random(in: 0..<4, using: &random) == 0 {
            message.text = nil
            message.attachments = []
            message.deletedAt = Timestamp(microsecondsSinceEpoch: 1_795_000_000_000_000)
        }
        return message
    }

    @Test func aPageOfMessagesIsWhatJSONEncoderWrites() throws {
        var random = SplitMix(seed: 21)
        for round in 0..<300 {
            let messages = (0..<Int.random(in: 0...8, using: &random)).map { _ in Self.randomMessage(&random) }
            let page = MessagesPage(messages: messages, nextCursor: round % 3 == 0 ? nil : Int64(round) * 977)
            #expect(page.json == (try CanonicalJSON.encode(page)), "round \(round)")
        }
    }

    @Test func aMessageAnswerIsWhatJSONEncoderWrites() throws {
        var random = SplitMix(seed: 22)
        for round in 0..<300 {
            let answer = MessageResponse(
                message: Self.randomMessage(&random), version: Int64.random(in: 0...Int64.max, using: &random))
            #expect(answer.json == (try CanonicalJSON.encode(answer)), "round \(round)")
        }
    }
}
