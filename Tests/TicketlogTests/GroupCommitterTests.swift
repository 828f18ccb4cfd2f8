import Synchronization
import Testing

@testable import Ticketlog

@Suite(.timeLimit(.minutes(10))) struct GroupCommitterTests {
    /// While one flush is in progress, requests queue up and the next flush takes them all.
    @Test func requestsArrivingDuringAFlushAreCoalescedIntoTheNextOne() async throws {
        let gate = Gate()
        let flushes = Mutex<[[Int]]>([])
        let committer = GroupCommitter<Int, Int>(maximumBatchWeight: 100) { requests in
            flushes.withLock { $0.append(requests) }
            if requests == [0] { await gate.wait() }  // hold the first flush open
            return requests.map { .success($0 * 10) }
        }
        try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            group.addTask { (0, try await committer.submit(0)) }
            // Wait until the first flush is running, then queue ten more behind it.
            while flushes.withLock({ $0.isEmpty }) { await Task.yield() }
            for value in 1...10 {
                group.addTask { (value, try await committer.submit(value)) }
            }
            while committer.pendingCount < 10 { await Task.yield() }
            await gate.open()
            for try await (value, response) in group {
                #expect(response == value * 10)
            }
        }
        let batches = flushes.withLock { $0 }
        #expect(batches.count == 2)
        #expect(batches[0] == [0])
        #expect(batches[1].sorted() == Array(1...10))
    }

    @Test func batchesStopAtTheMaximumWeight() async throws {
        let gate = Gate()
        let flushes = Mutex<[[Int]]>([])
        let committer = GroupCommitter<Int, Int>(maximumBatchWeight: 10) { requests in
            flushes.withLock { $0.append(requests) }
            if requests == [0] { await gate.wait() }
            return requests.map { .success($0) }
        }
        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask { try await committer.submit(0, weight: 1) }
            while flushes.withLock({ $0.isEmpty }) { await Task.yield() }
            for value in 1...6 {
                group.addTask { try await committer.submit(value, weight: 4) }
            }
            while committer.pendingCount < 6 { await Task.yield() }
            await gate.open()
            try await group.waitForAll()
        }
        let batches = flushes.withLock { $0 }
        // Six requests of weight 4 with a limit of 10: batches of two.
        #expect(batches.dropFirst().map(\.count) == [2, 2, 2])
    }

    @Test func failuresGoToTheirOwnRequestOnly() async throws {
        struct Odd: Error {}
        let committer = GroupCommitter<Int, Int>(maximumBatchWeight: 100) { requests in
            requests.map { $0.isMultiple(of: 2) ? .success($0) : .failure(Odd()) }
        }
        #expect(try await committer.submit(2) == 2)
        await #expect(throws: Odd.self) { try await committer.submit(3) }
    }
}

/// Suspends callers of `wait()` until `open()`.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}
