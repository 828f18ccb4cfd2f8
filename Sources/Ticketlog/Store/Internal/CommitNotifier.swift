import Synchronization

/// Tells waiting subscribers that the log grew beyond a position.
///
/// Only a wake-up signal: subscribers always read what they deliver from the database, so a
/// missed or spurious wake-up costs a query, never an event.
package final class CommitNotifier: Sendable {
    private struct Waiter {
        var beyond: Int64
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var head: Int64
        var nextToken = 0
        var waiters: [Int: Waiter] = [:]
    }

    private let state: Mutex<State>

    package init(head: Int64) {
        state = Mutex(State(head: head))
    }

    /// Subscribers waiting now (for tests: a subscriber is ready when it waits).
    package var waiting: Int { state.withLock { $0.waiters.count } }

    /// Records that positions up to `position` are committed and wakes the waiters they satisfy.
    package func advance(to position: Int64) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.head = max(state.head, position)
            let head = state.head
            let satisfied = state.waiters.filter { $0.value.beyond < head }
            for token in satisfied.keys { state.waiters.removeValue(forKey: token) }
            return satisfied.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Returns once the head is beyond `position`, the task is cancelled, or `timeout` passed
    /// (the timeout lets subscribers notice appends made by another process).
    package func wait(beyond position: Int64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(beyond: position) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func wait(beyond position: Int64) async {
        let token = state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.head > position || Task.isCancelled { return true }
                    state.waiters[token] = Waiter(beyond: position, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: token) }
            waiter?.continuation.resume()
        }
    }
}
