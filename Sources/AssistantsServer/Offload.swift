import NIOPosix

/// The one way blocking work leaves NIO's event loops, which run every task here (they are the
/// Swift Concurrency executor): short file-system and CPU work goes to NIO's thread pool, and
/// child processes that may run for minutes (pdftotext) to a bounded pool of their own, so they
/// can never take the threads that SQLite's COMMITs wait for.
enum Offload {
    /// Short blocking work: a file-system call, a parse, an fsync.
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    /// Threads for child processes, at most two at once.
    static let processPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    /// Work that waits for a child process.
    static func process<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await processPool.runIfActive(body)
    }
}
