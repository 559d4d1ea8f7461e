import NIOCore
import NIOPosix

/// A task executor that runs a task's jobs on one of NIO's event loops. A task that prefers it
/// (`Task(executorPreference:)`, `withTaskExecutorPreference`) comes back to that loop's thread
/// even when it resumes from another (the SQLite writer's thread, another loop's connection), so
/// a request, the run it starts, the run's upstream call and the run's event stream share one
/// thread: a streamed delta crosses no thread between the upstream's connection and the client's.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    private init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// One executor per loop of the process's event loops (`MultiThreadedEventLoopGroup.singleton`).
    private static let byLoop = PerEventLoop(.singleton) { EventLoopTaskExecutor($0) }

    /// The executor of `loop`, if it is one of the process's event loops (a test's embedded
    /// channel's is not: its work runs wherever it would have).
    static func of(_ loop: any EventLoop) -> EventLoopTaskExecutor? {
        byLoop.of(loop)
    }

    /// The executor of the event loop running the current thread, if any.
    static var current: EventLoopTaskExecutor? {
        byLoop.current
    }
}
