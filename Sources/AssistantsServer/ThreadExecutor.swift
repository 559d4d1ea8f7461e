import Foundation

/// A task executor with one thread of its own, for a serial task whose every step may block: the
/// SQLite writer runs its statements in place (and an FTS5 merge or a COMMIT's fsync can take a
/// while), so it runs here, never on one of NIO's event loops. A task started with this executor
/// as its preference (`Task(executorPreference:)`) runs its nonisolated code on this thread.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    // `jobs` and `stopping` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    init(name: String) {
        // The thread holds the executor until `stop()`.
        let thread = Thread {
            // Named from inside: only the current thread's name reaches the OS (`top -H`, perf).
            Thread.current.name = name
            self.serve()
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once the jobs already queued have run. Call it when the last task that
    /// prefers this executor ends (from that task itself, as its last step).
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// Runs the jobs as they arrive, until `stop()`.
    private func serve() {
        let executor = asUnownedTaskExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping {
                condition.wait() // blocking-ok: this executor's own thread, never an event loop
            }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch {
                job.runSynchronously(on: executor)
            }
        }
    }
}
