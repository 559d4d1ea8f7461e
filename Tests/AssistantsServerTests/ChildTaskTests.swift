import Dispatch
import NIOPosix
import Testing
@testable import AssistantsServer

/// `inChildTask`: the caller gets the body's value or error, and the child is the caller's in
/// every way a run's code relies on (its loop, its task locals, its cancellation).
@Suite struct ChildTaskTests {
    struct Failure: Error, Equatable {}

    /// Non-Sendable state of the caller, used by the child while the caller waits.
    final class Counter {
        var value = 0
    }

    @Test func theCallerGetsTheValueOrTheError() async throws {
        let counter = Counter()
        let value = try await inChildTask { () -> Int in
            counter.value += 1
            return counter.value * 10
        }
        #expect(value == 10 && counter.value == 1)
        await #expect(throws: Failure.self) { try await inChildTask { throw Failure() } }
    }

    @Test func theChildHasTheCallersTaskLocalsAndLoop() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let executor = try #require(EventLoopTaskExecutor.of(loop))
        let seen = try await Task(executorPreference: executor) {
            try await LogContext.$runID.withValue("run_child") {
                try await inChildTask { () -> (String?, Bool) in
                    await withCheckedContinuation { continuation in DispatchQueue.global().async { continuation.resume() } }
                    return (LogContext.runID, MultiThreadedEventLoopGroup.currentEventLoop === loop)
                }
            }
        }.value
        #expect(seen.0 == "run_child")
        #expect(seen.1, "the child resumes on the caller's event loop")
    }

    @Test func cancellingTheCallerCancelsTheChild() async throws {
        let waiting = Task {
            try await inChildTask { try await Task.sleep(for: .seconds(60)) }
        }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
    }
}
