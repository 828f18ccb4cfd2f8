import Dispatch

/// Where a file's group commits run: the ``GroupCommitter``'s drain, on a serial queue of the
/// store's own. The drain waits for the writer synchronously (`DatabaseWriter.write`), which
/// runs the transaction on this queue's thread when the writer is free — no hop to the
/// writer's queue and back between two commits, and no wait behind the request handlers on
/// Swift's shared pool (a `POST …/messages` load at FULL: +0–9% in nine alternating pairs).
/// Blocking here is what the queue is for: a serial queue of its own runs on a thread Dispatch
/// adds when the others are busy, never one of the shared pool's.
final class CommitExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "ticketlog.commit")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
