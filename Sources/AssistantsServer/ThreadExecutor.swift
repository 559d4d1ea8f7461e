import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A task executor with one thread of its own, for a serial task whose every step may block: the
/// SQLite writer runs its statements in place (and an FTS5 merge or a COMMIT's fsync can take a
/// while), so it runs here, never on one of NIO's event loops. A task started with this executor
/// as its preference (`Task(executorPreference:)`) runs its nonisolated code on this thread.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    // `jobs` and `stopping` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    /// `niceness`: nice steps below the process's priority that the thread runs at (Linux), so
    /// that when the cores are saturated the event loops, which carry every connection, go first.
    init(name: String, niceness: Int32 = 0) {
        // The thread holds the executor until `stop()`.
        let thread = Thread {
            // Named from inside: only the current thread's name reaches the OS (`top -H`, perf).
            Thread.current.name = name
            if niceness > 0 { Self.lowerCurrentThreadPriority(by: niceness) }
            self.serve()
        }
        thread.start()
    }

    /// The calling thread's nice value (Linux keeps one per thread: `who` 0 is the calling
    /// thread, not the process); 0 where there is none.
    static func currentThreadNiceness() -> Int32 {
        #if os(Linux)
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        return errno == 0 ? value : 0
        #else
        return 0
        #endif
    }

    /// Raises the calling thread's nice value by `amount`, up to 19. Lowering a priority needs no
    /// privilege; if it fails anyway, the thread keeps the process's.
    private static func lowerCurrentThreadPriority(by amount: Int32) {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, min(currentThreadNiceness() + amount, 19))
        #endif
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
