import Logging
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

    @TaskLocal static var requestID: String?

    /// A batch's flush (and what it logs) names the callers whose requests it holds: the
    /// drain that flushes it may have been started by an earlier caller, whose id it must not
    /// carry (a failed commit was logged with the id of a request answered before it).
    @Test func aFlushKnowsTheCallersOfItsBatchAndNoOthers() async throws {
        let gate = Gate()
        let flushes = Mutex<[(requests: [Int], callers: Logger.Metadata, inherited: String?)]>([])
        let committer = GroupCommitter<Int, Int>(
            maximumBatchWeight: 100,
            callerMetadata: Logger.MetadataProvider {
                Self.requestID.map { ["ticketlog.request": .string($0)] } ?? [:]
            }
        ) { requests in
            flushes.withLock { $0.append((requests, CommitCallers.metadata, Self.requestID)) }
            if requests == [0] { await gate.wait() }
            return requests.map { .success($0) }
        }
        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask { try await Self.$requestID.withValue("a") { try await committer.submit(0) } }
            while flushes.withLock({ $0.isEmpty }) { await Task.yield() }
            for (value, id) in [(1, "b"), (2, "c"), (3, "b")] {
                group.addTask { try await Self.$requestID.withValue(id) { try await committer.submit(value) } }
            }
            while committer.pendingCount < 3 { await Task.yield() }
            await gate.open()
            try await group.waitForAll()
        }
        let seen = flushes.withLock { $0 }
        #expect(seen.map(\.requests.count) == [1, 3])
        #expect(seen.first?.callers == ["ticketlog.request": "a"])
        // Queued in whatever order the tasks ran: the ids, each once.
        let second = seen.last?.callers["ticketlog.request"]
        guard case .array(let ids) = second else {
            Issue.record("expected the batch's three callers, two of them alike: \(String(describing: second))")
            return
        }
        #expect(Set(ids.map(\.description)) == ["b", "c"] && ids.count == 2)
        // The drain runs detached: nothing of the caller that started it.
        #expect(seen.allSatisfy { $0.inherited == nil })
    }

    /// With an executor, every flush runs on it (a file's store: its ``CommitExecutor``, whose
    /// thread may wait for the writer), also after an await inside the flush; without one, never.
    @Test func flushesRunOnTheCommittersExecutor() async throws {
        let executor = CommitExecutor()
        let onExecutor: @Sendable () -> Bool = {
            withUnsafeCurrentTask { $0?.unownedTaskExecutor == executor.asUnownedTaskExecutor() }
        }
        let placements = Mutex<[Bool]>([])
        let committer = GroupCommitter<Int, Int>(maximumBatchWeight: 100, executor: executor) { requests in
            placements.withLock { $0.append(onExecutor()) }
            await Task.yield()
            placements.withLock { $0.append(onExecutor()) }
            return requests.map { .success($0) }
        }
        try await withThrowingTaskGroup(of: Int.self) { group in
            for value in 0..<20 { group.addTask { try await committer.submit(value) } }
            var answers: [Int] = []
            for try await answer in group { answers.append(answer) }
            #expect(answers.sorted() == Array(0..<20))
        }
        #expect(!placements.withLock { $0 }.isEmpty)
        #expect(placements.withLock { $0 }.allSatisfy { $0 })

        let elsewhere = Mutex<[Bool]>([])
        let plain = GroupCommitter<Int, Int>(maximumBatchWeight: 100) { requests in
            elsewhere.withLock { $0.append(onExecutor()) }
            return requests.map { .success($0) }
        }
        #expect(try await plain.submit(1) == 1)
        #expect(elsewhere.withLock { $0 } == [false])
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
