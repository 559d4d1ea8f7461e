import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import AssistantsServer

/// `RunAdmission` holds a new run's start while its event loop is behind, and lets it go once the
/// loop catches up (or after `longestWait`). Each test holds a loop of its own group busy with
/// back-to-back 10 ms jobs, as saturated cores would, and starts runs from tasks pinned to it.
@Suite struct RunAdmissionTests {
    /// Runs a task's jobs on one event loop, as the server's handlers are pinned to theirs.
    final class LoopExecutor: TaskExecutor {
        let loop: any EventLoop
        init(_ loop: any EventLoop) { self.loop = loop }
        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
    }

    /// Keeps a loop busy with 10 ms jobs, each queued by the one before, until `release()`.
    final class LoopHolder: Sendable {
        let loop: any EventLoop
        private let released = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        private let steps = NIOLockedValueBox(0)
        init(_ loop: any EventLoop) { self.loop = loop }

        /// Starts holding; returns once three jobs have run, so that the loop has timed itself late.
        func hold() async throws {
            loop.execute { self.step() }
            while steps.withLockedValue({ $0 }) < 3 { try await Task.sleep(for: .milliseconds(5)) }
        }
        /// Stops holding; returns when it did.
        @discardableResult func release() -> ContinuousClock.Instant {
            let now = ContinuousClock.now
            released.withLockedValue { $0 = now }
            return now
        }
        private func step() {
            usleep(10_000)  // blocking-ok: the test's own loop, held on purpose
            steps.withLockedValue { $0 += 1 }
            if released.withLockedValue({ $0 }) == nil { loop.execute { self.step() } }
        }
    }

    /// Starts a run on `loop` through `admission`; returns when its start went ahead.
    static func start(_ admission: RunAdmission, on executor: LoopExecutor) async -> ContinuousClock.Instant {
        await Task(executorPreference: executor) {
            await admission.admit()
            return ContinuousClock.now
        }.value
    }

    static func withLoop(_ body: (any EventLoop, LoopExecutor, MultiThreadedEventLoopGroup) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        do {
            try await body(loop, LoopExecutor(loop), group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    @Test func aStartWaitsWhileItsLoopIsHeldAndGoesOnceItCatchesUp() async throws {
        try await Self.withLoop { loop, executor, group in
            // The loop keeps measuring itself however slowly a loaded machine runs the test: after a
            // quiet `idleAfter`, the next start would go ahead unmeasured.
            let admission = RunAdmission(group: group, limits: .init(lagLimit: .milliseconds(2), longestWait: .seconds(60),
                                                                     idleAfter: .seconds(600)))
            let began = ContinuousClock.now
            // Idle: at once (and the loop starts measuring itself).
            let first = await Self.start(admission, on: executor)
            #expect(first - began < .milliseconds(500))

            let holder = LoopHolder(loop)
            try await holder.hold()
            async let second = Self.start(admission, on: executor)
            async let third = Self.start(admission, on: executor)
            try await Task.sleep(for: .milliseconds(300))
            let released = holder.release()
            let (secondAt, thirdAt) = await (second, third)
            #expect(secondAt > released, "a start went ahead while its loop was held")
            #expect(thirdAt > released, "a start went ahead while its loop was held")
            #expect(secondAt - released < .seconds(20))
            #expect(thirdAt - released < .seconds(20))
        }
    }

    @Test func noStartWaitsLongerThanTheLongestWait() async throws {
        try await Self.withLoop { loop, executor, group in
            let admission = RunAdmission(group: group, limits: .init(lagLimit: .milliseconds(2), longestWait: .milliseconds(200),
                                                                     idleAfter: .seconds(600)))
            _ = await Self.start(admission, on: executor)
            let holder = LoopHolder(loop)
            try await holder.hold()
            let asked = ContinuousClock.now
            let startedAt = await Self.start(admission, on: executor)
            holder.release()
            #expect(startedAt - asked >= .milliseconds(190), "it went ahead while its loop was held")
            #expect(startedAt - asked < .seconds(10), "it waited on, past the longest wait")
        }
    }

    @Test func aZeroLimitStartsEveryRunAtOnce() async throws {
        try await Self.withLoop { loop, executor, group in
            let admission = RunAdmission(group: group, limits: .init(lagLimit: .zero))
            let holder = LoopHolder(loop)
            try await holder.hold()
            var startedAt: [ContinuousClock.Instant] = []
            for _ in 0..<3 { startedAt.append(await Self.start(admission, on: executor)) }
            let released = holder.release()
            #expect(startedAt.allSatisfy { $0 < released })
        }
    }
}
