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
        var complete: @Sendable (Result<Response, any Error>) -> Void
    }

    private struct State {
        var pending: [Pending] = []
        var isDraining = false
    }

    private let state = Mutex(State())
    private let maximumBatchWeight: Int
    private let flush: Flush

    /// - Parameters:
    ///   - maximumBatchWeight: a batch stops growing once its requests' weights (e.g. event
    ///     counts) reach this; a single heavier request still goes alone.
    ///   - flush: handles one batch and returns one result per request, in order.
    package init(maximumBatchWeight: Int, flush: @escaping Flush) {
        self.maximumBatchWeight = maximumBatchWeight
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
        guard !requests.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            let collected = Mutex(
                (results: [Result<Response, any Error>?](repeating: nil, count: requests.count), left: requests.count))
            let pending = requests.enumerated().map { index, item in
                Pending(request: item.request, weight: item.weight) { result in
                    let done = collected.withLock { state -> [Result<Response, any Error>]? in
                        state.results[index] = result
                        state.left -= 1
                        return state.left == 0 ? state.results.map { $0! } : nil
                    }
                    if let done { continuation.resume(returning: done) }
                }
            }
            enqueue(pending)
        }
    }

    private func enqueue(_ items: [Pending]) {
        let startDraining = state.withLock { state in
            state.pending.append(contentsOf: items)
            guard !state.isDraining else { return false }
            state.isDraining = true
            return true
        }
        if startDraining {
            Task { await self.drain() }
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
            let results = await flush(batch.map(\.request))
            precondition(results.count == batch.count, "flush must return one result per request")
            for (item, result) in zip(batch, results) {
                item.complete(result)
            }
        }
    }
}
