import Foundation
import Synthetic
import Testing

@testable import StreamChatSync
@testable import Ticketlog

@Suite(.timeLimit(.minutes(3))) struct OutboxStateMachineTests {
    static func event(_ position: Int64, _ stream: String) -> RecordedEvent {
        RecordedEvent(
            position: position, stream: .ticket(stream)!, version: position, id: UUID(),
            actor: Actor(id: "a", role: .agent),
            occurredAt: .init(microsecondsSinceEpoch: 0), recordedAt: .init(microsecondsSinceEpoch: 0), origin: .local,
            correlationID: nil, causationID: nil, payload: .memberLeft(MemberLeft(user: "x")))
    }

    static func request(_ name: String) -> StreamChatRequest { StreamChatRequest(.post, "/\(name)") }

    static func sends(_ actions: [OutboxStateMachine.Action]) -> [OutboxStateMachine.SendID] {
        actions.compactMap { if case .send(let id, _) = $0 { id } else { nil } }
    }

    @Test func oneRequestPerChannelAtATimeAndTheCursorFollowsTheDonePrefix() {
        var machine = OutboxStateMachine(cursor: 0)
        machine.enqueue(Self.event(1, "a"), requests: [Self.request("a1"), Self.request("a1b")])
        machine.enqueue(Self.event(2, "b"), requests: [Self.request("b2")])
        machine.enqueue(Self.event(3, "a"), requests: [Self.request("a3")])
        let first = machine.actions(now: 0)
        #expect(Self.sends(first).map(\.position) == [1, 2])
        // b finishes first: position 1 is not done yet, so the cursor stays.
        let afterB = machine.complete(Self.sends(first)[1], .success, now: 0, random: 0)
        #expect(afterB.isEmpty)
        #expect(machine.cursor == 0)
        let afterA1 = machine.complete(Self.sends(first)[0], .success, now: 0, random: 0)
        #expect(afterA1.isEmpty, "event 1 has a second request")
        let second = machine.actions(now: 0)
        #expect(
            second == [
                .send(.init(stream: .ticket("a")!, position: 1, requestIndex: 1, attempt: 1), Self.request("a1b"))
            ])
        #expect(machine.complete(Self.sends(second)[0], .success, now: 0, random: 0) == [.saveCursor(2)])
        let third = machine.actions(now: 0)
        #expect(Self.sends(third).map(\.position) == [3])
        #expect(machine.complete(Self.sends(third)[0], .success, now: 0, random: 0) == [.saveCursor(3)])
        #expect(machine.isIdle)
    }

    @Test func retriesWaitAndABlockedChannelHoldsUpNoOther() {
        var machine = OutboxStateMachine(cursor: 10, configuration: .init(baseBackoff: 1, maximumBackoff: 8))
        machine.enqueue(Self.event(11, "a"), requests: [Self.request("a")])
        machine.enqueue(Self.event(12, "b"), requests: [Self.request("b")])
        let sent = Self.sends(machine.actions(now: 0))
        // a: 429 with the server's reset in 5 s; b goes on.
        _ = machine.complete(sent[0], .retryable(after: 5), now: 0, random: 0.5)
        #expect(machine.complete(sent[1], .success, now: 0, random: 0.5).isEmpty, "11 is not done, so no cursor move")
        #expect(Self.sends(machine.actions(now: 4.9)).isEmpty)
        #expect(machine.nextWakeUp == 5)
        let retry = Self.sends(machine.actions(now: 5))
        #expect(retry.map(\.attempt) == [2])
        // No server hint: exponential backoff with jitter (base 1 s * 2^(attempt-1) * random).
        _ = machine.complete(retry[0], .retryable(after: nil), now: 5, random: 0.5)
        #expect(machine.nextWakeUp == 6)
        let third = Self.sends(machine.actions(now: 6))
        _ = machine.complete(third[0], .retryable(after: nil), now: 6, random: 1)
        #expect(machine.nextWakeUp == 10)
        let fourth = Self.sends(machine.actions(now: 10))
        #expect(machine.complete(fourth[0], .success, now: 10, random: 0) == [.saveCursor(12)])
    }

    @Test func aPermanentFailureDeadLettersTheEventAndMovesOn() {
        var machine = OutboxStateMachine(cursor: 0)
        machine.enqueue(Self.event(1, "a"), requests: [Self.request("a1"), Self.request("a1b")])
        machine.enqueue(Self.event(2, "a"), requests: [Self.request("a2")])
        let sent = Self.sends(machine.actions(now: 0))
        let actions = machine.complete(sent[0], .permanent(reason: "400 code 4: reserved field"), now: 0, random: 0)
        #expect(
            actions == [
                .deadLetter(
                    position: 1, stream: .ticket("a")!, request: Self.request("a1"),
                    reason: "400 code 4: reserved field"),
                .saveCursor(1),
            ])
        #expect(Self.sends(machine.actions(now: 0)).map(\.position) == [2], "a1b is skipped with its event")
    }

    @Test func eventsWithoutRequestsAndStaleResponses() {
        var machine = OutboxStateMachine(cursor: 0)
        machine.enqueue(Self.event(1, "a"), requests: [])
        machine.enqueue(Self.event(2, "a"), requests: [Self.request("a2")])
        machine.enqueue(Self.event(3, "b"), requests: [])
        let actions = machine.actions(now: 0)
        #expect(actions.contains(.saveCursor(1)))
        let sent = Self.sends(actions)
        var stale = sent[0]
        stale.attempt = 7
        #expect(machine.complete(stale, .success, now: 0, random: 0).isEmpty)
        #expect(machine.complete(sent[0], .success, now: 0, random: 0) == [.saveCursor(3)])
    }

    /// A simulated Stream with random failures: every event ends mirrored (each of its requests
    /// succeeding exactly once, in channel order) or dead-lettered, and the cursor reaches the end.
    @Test(arguments: 0..<10)
    func underRandomFailuresEverythingEndsDoneExactlyOnce(_ seed: UInt64) {
        var random = SplitMix(seed: seed)
        var machine = OutboxStateMachine(cursor: 0, configuration: .init(baseBackoff: 0.1, maximumBackoff: 2))
        var expected: [String: [String]] = [:]
        for position in 1...60 {
            let stream = "t\(Int.random(in: 0..<5, using: &random))"
            let requests = (0..<Int.random(in: 0...3, using: &random)).map {
                Self.request("\(stream)-\(position)-\($0)")
            }
            machine.enqueue(Self.event(Int64(position), stream), requests: requests)
            expected[stream, default: []] += requests.map(\.path)
        }
        var now = 0.0
        var succeeded: [String: [String]] = [:]
        var deadLettered: Set<Int64> = []
        var inFlight: [(OutboxStateMachine.SendID, StreamChatRequest)] = []
        var saved: Int64 = 0
        func apply(_ actions: [OutboxStateMachine.Action]) {
            for action in actions {
                switch action {
                case .send(let id, let request): inFlight.append((id, request))
                case .deadLetter(let position, _, _, _): deadLettered.insert(position)
                case .saveCursor(let position):
                    #expect(position > saved)
                    saved = position
                }
            }
        }
        var steps = 0
        while !machine.isIdle, steps < 10_000 {
            steps += 1
            apply(machine.actions(now: now))
            if inFlight.isEmpty {
                now = machine.nextWakeUp ?? now
                continue
            }
            let (id, request) = inFlight.removeFirst()
            let roll = Int.random(in: 0..<100, using: &random)
            let outcome: OutboxStateMachine.Outcome =
                roll < 20
                ? .retryable(after: roll < 5 ? 1 : nil)
                : roll < 23 ? .permanent(reason: "4xx") : .success
            if outcome == .success { succeeded[id.stream.ticketID!, default: []].append(request.path) }
            apply(machine.complete(id, outcome, now: now, random: Double.random(in: 0...1, using: &random)))
        }
        #expect(machine.isIdle)
        #expect(saved == 60)
        for (stream, paths) in expected {
            let done = succeeded[stream] ?? []
            #expect(Set(done).count == done.count, "a request succeeded twice in \(stream)")
            // Successful requests are the expected ones, in order, minus dead-lettered events' requests.
            let kept = paths.filter { path in
                let position = Int64(path.split(separator: "-")[1])!
                return !deadLettered.contains(position) || done.contains(path)
            }
            #expect(done == kept, "\(stream)")
        }
    }
}

extension OutboxStateMachineTests {
    /// With fewer slots than busy channels, the oldest waiting event goes first, so no channel
    /// starves and the cursor keeps moving.
    @Test func theOldestWaitingEventGoesFirst() {
        var machine = OutboxStateMachine(cursor: 0)
        machine.enqueue(Self.event(1, "z"), requests: [Self.request("z1")])
        machine.enqueue(Self.event(2, "a"), requests: [Self.request("a2")])
        machine.enqueue(Self.event(3, "m"), requests: [Self.request("m3")])
        let sent = Self.sends(machine.actions(now: 0, limit: 2))
        #expect(sent.map(\.position) == [1, 2])
    }
}
