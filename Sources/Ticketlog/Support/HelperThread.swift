import Foundation

/// A second thread for CPU work a caller splits in two (`verify`'s pages of events): the caller
/// runs one part while the helper runs the other, and goes on when both are done.
///
/// A thread of its own rather than Dispatch's or Swift's pools: the caller may be a PostgreSQL
/// session, which runs on its lane's queue and blocks it while the server answers, and handing
/// work to the shared pools from there (`concurrentPerform`) hung the PostgreSQL suites under
/// the full test run. The helper depends on nothing but the work it is given. ``stop()`` ends it.
final class HelperThread: @unchecked Sendable {
    // @unchecked Sendable: `job` and `stopping` are read and written only under `condition`;
    // what a job writes is read by the caller after `both` saw the job finished under it.

    private let condition = NSCondition()
    private var job: (@Sendable () -> Void)?
    private var stopping = false

    /// - Parameter name: the thread's name, as `top -H` and profilers show it (Linux keeps 15 bytes).
    init(name: String) {
        let thread = Thread { [self] in
            // Named from the thread itself: a thread inherits its creator's name on Linux.
            Thread.current.name = name
            self.serve()
        }
        thread.start()
    }

    /// Runs `there` on the helper and `here` on the calling thread, and returns (or throws)
    /// once both have finished, `here`'s result.
    func both<Result>(here: () throws -> Result, there: @escaping @Sendable () -> Void) rethrows -> Result {
        condition.lock()
        precondition(job == nil && !stopping, "a helper thread runs one job at a time, and not after stop()")
        job = there
        condition.broadcast()
        condition.unlock()
        defer {
            condition.lock()
            while job != nil { condition.wait() }
            condition.unlock()
        }
        return try here()
    }

    /// Lets the thread end once the job it runs, if any, is done.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func serve() {
        condition.lock()
        while true {
            while job == nil, !stopping { condition.wait() }
            guard let work = job else { break }
            condition.unlock()
            work()
            condition.lock()
            job = nil
            condition.broadcast()
        }
        condition.unlock()
    }
}

/// A value a helper thread's job writes for the caller to read after ``HelperThread/both(here:there:)``.
final class HelperResult<Value>: @unchecked Sendable {
    // @unchecked Sendable: written by the job, read by the caller only after `both` returned,
    // which synchronises the two through the helper's lock.
    var value: Value

    init(_ value: Value) { self.value = value }
}
