import NIOPosix

/// The one way blocking work leaves NIO's event loops, which run every task here (they are the
/// Swift Concurrency executor): short file-system and CPU work goes to NIO's thread pool. Child
/// processes are run with swift-subprocess, whose pipes are watched by its own epoll thread, so
/// waiting for one holds no thread at all; `children` bounds how many long ones (pdftotext) run
/// at once, so two big PDFs cannot take both cores from the event loops.
enum Offload {
    /// Short blocking work: a file-system call, a parse, an fsync.
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    /// Long child processes running at once, at most two; the others wait their turn.
    static let children = PermitGate(limit: 2)

    /// Work that waits for a long child process: it starts when one of the `children` slots is free.
    static func process<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await children.withPermit(body)
    }
}
