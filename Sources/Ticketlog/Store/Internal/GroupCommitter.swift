import Logging
import Synchronization

/// Coalesces concurrent requests into batches handled by one `flush` call at a time.
///
/// While a flush runs, new requests queue up; when it returns, everything queued is flushed
/// together. With one SQLite writer and an fsync per commit, this turns N concurrent appends
/// into far fewer transactions (group commit) without delaying a lone append.
package final class GroupCommitter<Request: Sendable, Response: Sendable>: Sendable {
    package typealias Flush = @Sendable ([Request]) async -> [Result<Response, any Error>]

    private struct Pending {
        var request: Request
        var weight: Int
        /// The logging metadata of the task that queued it (``CommitCallers``).
        var caller: Logger.Metadata = [:]
        var complete: @Sendable (Result<Response, any Error>) -> Void
    }

    private struct State {
        var pending: [Pending] = []
        var isDraining = false
    }

    private let state = Mutex(State())
    private let maximumBatchWeight: Int
    private let flush: Flush
    private let callerMetadata: Logger.MetadataProvider?
    private let executor: (any TaskExecutor)?

    /// - Parameters:
    ///   - maximumBatchWeight: a batch stops growing once its requests' weights (e.g. event
    ///     counts) reach this; a single heavier request still goes alone.
    ///   - callerMetadata: read in each task that queues a request (a server's request id);
    ///     `flush` finds the batch's in ``CommitCallers``.
    ///   - executor: where the drain, and so each `flush`, runs (a file's ``CommitExecutor``,
    ///     whose thread may wait for the writer); Swift's shared pool when `nil`.
    ///   - flush: handles one batch and returns one result per request, in order.
    package init(
        maximumBatchWeight: Int, callerMetadata: Logger.MetadataProvider? = nil, executor: (any TaskExecutor)? = nil,
        flush: @escaping Flush
    ) {
        self.executor = executor
        self.maximumBatchWeight = maximumBatchWeight
        self.callerMetadata = callerMetadata
        self.flush = flush
    }

    /// Queues `request` and returns its response once the batch holding it was flushed.
    /// A request, once submitted, is flushed even if the calling task is cancelled.
    package func submit(_ request: Request, weight: Int = 1) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            enqueue([Pending(request: request, weight: weight, complete: { continuation.resume(with: $0) })])
        }
    }

    /// Queues `requests` together, in order, and returns their results in the same order.
    /// They are flushed in that order, in one batch or consecutive ones.
    package func submitAll(_ requests: [(request: Request, weight: Int)]) async -> [Result<Response, any Error>] {
        await enqueueAll(requests).results()
    }

    /// Queues `requests` now — after everything queued before, before anything queued after —
    /// and returns at once: the caller can go on (and, say, finish preparing what it queued)
    /// while they are flushed. Once queued, they are flushed even if nobody waits for them.
    package func enqueueAll(_ requests: [(request: Request, weight: Int)]) -> Queued {
        let queued = Queued(count: requests.count)
        enqueue(
            requests.enumerated().map { index, item in
                Pending(request: item.request, weight: item.weight) { queued.complete(index, with: $0) }
            })
        return queued
    }

    /// Requests queued by ``enqueueAll(_:)``: their results, in order, once all were flushed.
    package final class Queued: Sendable {
        private struct State {
            var results: [Result<Response, any Error>?]
            var left: Int
            var waiting: CheckedContinuation<[Result<Response, any Error>], Never>?
        }

        private let state: Mutex<State>

        fileprivate init(count: Int) {
            state = Mutex(State(results: Array(repeating: nil, count: count), left: count))
        }

        fileprivate func complete(_ index: Int, with result: Result<Response, any Error>) {
            let done = state.withLock {
                state -> (CheckedContinuation<[Result<Response, any Error>], Never>, [Result<Response, any Error>])? in
                state.results[index] = result
                state.left -= 1
                guard state.left == 0, let waiting = state.waiting else { return nil }
                state.waiting = nil
                return (waiting, state.results.map { $0! })
            }
            if let (waiting, results) = done { waiting.resume(returning: results) }
        }

        /// The results, in the order the requests were queued (waited for once).
        package func results() async -> [Result<Response, any Error>] {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state -> [Result<Response, any Error>]? in
                    guard state.left == 0 else {
                        precondition(state.waiting == nil, "the results of queued requests are waited for once")
                        state.waiting = continuation
                        return nil
                    }
                    return state.results.map { $0! }
                }
                if let done { continuation.resume(returning: done) }
            }
        }
    }

    private func enqueue(_ items: [Pending]) {
        var items = items
        if let caller = callerMetadata?.get(), !caller.isEmpty {
            for index in items.indices { items[index].caller = caller }
        }
        let startDraining = state.withLock { state in
            state.pending.append(contentsOf: items)
            guard !state.isDraining else { return false }
            state.isDraining = true
            return true
        }
        if startDraining {
            // Detached: the drain goes on to flush what other tasks queue meanwhile, so it must
            // not carry the task-locals (a request's id in the log) of the one that started it.
            Task.detached(executorPreference: executor) { await self.drain() }
        }
    }

    /// Requests waiting for the next flush.
    var pendingCount: Int { state.withLock { $0.pending.count } }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Pending] in
                guard !state.pending.isEmpty else {
                    state.isDraining = false
                    return []
                }
                var weight = 0
                var count = 0
                for item in state.pending {
                    if count > 0 && weight + item.weight > maximumBatchWeight { break }
                    weight += item.weight
                    count += 1
                }
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return batch
            }
            guard !batch.isEmpty else { return }
            let results = await CommitCallers.$callers.withValue(batch.map(\.caller)) {
                await flush(batch.map(\.request))
            }
            precondition(results.count == batch.count, "flush must return one result per request")
            for (item, result) in zip(batch, results) {
                item.complete(result)
            }
        }
    }
}

/// Whose requests a ``GroupCommitter`` batch holds, for what its flush logs.
package enum CommitCallers {
    /// The logging metadata of each task that queued a request of the batch being flushed.
    @TaskLocal package static var callers: [Logger.Metadata] = []

    /// ``callers`` merged, worked out when a line is logged (a failed commit), not per batch: a
    /// key the callers agree on keeps its value, one they differ on holds each value once, in
    /// queue order (`ticketlog.request=[a, b]`).
    package static var metadata: Logger.Metadata { merged(callers) }

    static func merged(_ callers: [Logger.Metadata]) -> Logger.Metadata {
        var values: [String: [Logger.MetadataValue]] = [:]
        var seen: [String: Set<String>] = [:]
        var keys: [String] = []
        for caller in callers {
            for (key, value) in caller.sorted(by: { $0.key < $1.key }) {
                if values[key] == nil { keys.append(key) }
                if seen[key, default: []].insert(value.description).inserted { values[key, default: []].append(value) }
            }
        }
        var merged: Logger.Metadata = [:]
        for key in keys {
            let distinct = values[key] ?? []
            merged[key] = distinct.count == 1 ? distinct[0] : .array(distinct)
        }
        return merged
    }
}
