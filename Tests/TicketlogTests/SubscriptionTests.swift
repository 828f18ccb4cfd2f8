import Foundation
import Testing

@testable import Ticketlog

@Suite(.timeLimit(.minutes(10))) struct SubscriptionTests {
    @Test(arguments: StoreKind.allCases)
    func catchesUpThenFollowsLiveAppends(_ kind: StoreKind) async throws {
        let (store, directory) = try await kind.make()
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        try await store.append(factory.conversation(messages: 3), to: .test(1))  // positions 1-7
        let live = (0..<5).map { _ in factory.message() }

        let received = try await withThrowingTaskGroup(of: [Int64].self) { group in
            group.addTask {
                var positions: [Int64] = []
                for try await event in store.subscribe(from: 3) {
                    positions.append(event.position)
                    if positions.count == 10 { break }
                }
                return positions
            }
            for event in live {
                try await store.append(event, to: .test(2))
            }
            return try await group.next()!
        }
        #expect(received == Array(3...12))
    }

    /// One stream's subscription (issue 18's per-ticket feed): only its events, after a position
    /// of the whole log, for a stream created after the subscription started too.
    @Test func aStreamSubscriptionCarriesOnlyItsStreamAfterAPosition() async throws {
        let (store, directory) = try await StoreKind.file.make { $0.subscriptionPollInterval = .seconds(600) }
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        try await store.append(factory.conversation(messages: 2), to: .test(1))  // positions 1-6
        let received = try await withThrowingTaskGroup(of: [Int64].self) { group in
            group.addTask {
                var iterator = store.subscribe(to: .test(2), after: 0).makeAsyncIterator()
                var positions: [Int64] = []
                while positions.count < 3, let event = try await iterator.next() {
                    #expect(event.stream == .test(2))
                    positions.append(event.position)
                }
                return positions
            }
            // ticket 2 does not exist when the subscription starts; appends interleave.
            for (number, event) in [(1, factory.message()), (2, factory.message()), (1, factory.message())] {
                try await store.append(event, to: .test(number))
            }
            try await store.append([factory.message(), factory.message()], to: .test(2))
            return try await group.next()!
        }
        #expect(received == [8, 10, 11])
        var resumed = store.subscribe(to: .test(1), after: 5).makeAsyncIterator()
        #expect(try await resumed.next()?.position == 6)
        #expect(try await resumed.next()?.position == 7)
        #expect(try await resumed.next()?.position == 9)
    }

    @Test func aSubscriberWaitingForNewEventsIsWokenByAnAppend() async throws {
        let (store, directory) = try await StoreKind.file.make { $0.subscriptionPollInterval = .seconds(600) }
        defer { withExtendedLifetime(directory) {} }
        var factory = EventFactory()
        let event = factory.message()
        let first = Task {
            var iterator = store.subscribe().makeAsyncIterator()
            return try await iterator.next()
        }
        // The subscriber finds an empty log and waits; with a 10-minute poll, only the commit
        // notification can wake it within the 10 s allowed.
        try await waitUntil("the subscriber waits") { store.notifier.waiting == 1 }
        try await store.append(event, to: .test(1))
        let delivered = try await within(.seconds(10), "the wake-up") { try await first.value }
        #expect(delivered?.id == event.id)
    }

    @Test func seesEveryPositionExactlyOnceUnderConcurrentAppends() async throws {
        let (store, directory) = try await StoreKind.file.make()
        defer { withExtendedLifetime(directory) {} }
        let writers = 8
        let appendsPerWriter = 60
        var factory = EventFactory()
        let batches = (0..<writers).map { writer in
            (0..<appendsPerWriter).map { index in
                // Mix single events and small batches.
                (0...(index % 3)).map { _ in factory.message() }
            }
        }
        let total = batches.joined().map(\.count).reduce(0, +)

        let subscribers = 3
        let results = try await withThrowingTaskGroup(of: [Int64]?.self) { group in
            for subscriber in 0..<subscribers {
                group.addTask {
                    var positions: [Int64] = []
                    // One starts before anything exists, the others part-way through.
                    if subscriber > 0 { try await Task.sleep(for: .milliseconds(5 * subscriber)) }
                    for try await event in store.subscribe(from: 1) {
                        positions.append(event.position)
                        if positions.count == total { break }
                    }
                    return positions
                }
            }
            for (writer, appends) in batches.enumerated() {
                group.addTask {
                    for events in appends {
                        try await store.append(events, to: .test(writer))
                    }
                    return nil
                }
            }
            var collected: [[Int64]] = []
            for try await result in group {
                if let result { collected.append(result) }
            }
            return collected
        }
        #expect(results.count == subscribers)
        for positions in results {
            #expect(positions == Array(1...Int64(total)))
        }
    }

    @Test func endsWhenTheTaskIsCancelled() async throws {
        let (store, directory) = try await StoreKind.inMemory.make { $0.subscriptionPollInterval = .seconds(600) }
        defer { withExtendedLifetime(directory) {} }
        let task = Task {
            var count = 0
            for try await _ in store.subscribe() { count += 1 }
            return count
        }
        try await waitUntil("the subscriber waits") { store.notifier.waiting == 1 }
        task.cancel()
        #expect(try await within(.seconds(10), "the end after cancelling") { try await task.value } == 0)
    }
}
