import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `assistants-bench`: the bench's own load, in Swift, so that what a bench measures is the
/// server and not a Python driver sharing its two cores. `bench/streams.sh` runs its two
/// commands: the slow upstream, and the driver that holds the streams open.
@main
enum Entry {
    static func main() {
        // As in the server: NIO's event loops run every task, with no hop to a second pool.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        Task {
            await BenchCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}

/// The command line: one subcommand per role.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assistants-bench",
        abstract: "Load generators for bench/*.sh (loopback only).",
        subcommands: [StreamsUpstreamCommand.self, StreamsDriverCommand.self, EncodeCommand.self])
}

/// The open-files soft limit raised to the hard one; returns the new soft limit.
@discardableResult
func raiseOpenFiles() -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return Int(limit.rlim_cur)
}

/// Nanoseconds since the epoch (the wall clock both the upstream and the driver stamp with).
func wallNanos() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// A line on standard output, written at once (the bench script reads it while we run).
func printFlushed(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Sleeps until `deadline` on the event loop the task runs on (NIO's singleton group runs every
/// task here, see `Entry`), instead of `Task.sleep`, whose timer goes through Dispatch's threads
/// and resumes the task on whichever loop comes next. Throws `CancellationError` if cancelled.
func sleepOnEventLoop(until deadline: NIODeadline) async throws {
    let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.any()
    let scheduled = loop.scheduleTask(deadline: deadline) {}
    do {
        try await withTaskCancellationHandler {
            try await scheduled.futureResult.get()
        } onCancel: {
            scheduled.cancel()
        }
    } catch {
        throw CancellationError()
    }
}
