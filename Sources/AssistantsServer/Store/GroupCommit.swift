import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit

/// Group commit for the single SQLite writer: transactions that arrive while one commits are
/// run back to back inside one BEGIN/COMMIT, so one fsync makes many of them durable.
/// Each runs exactly once, in a SAVEPOINT of its own when the group has several (a group of one
/// is its transaction): one that throws is rolled back to its savepoint and fails alone, and the
/// others' writes commit. Only when the group's own BEGIN, a savepoint statement or the COMMIT
/// fails does every transaction of the group fail, with nothing of it written.
final class GroupCommit: Sendable {
    /// A waiting transaction: its body and the caller waiting for its result.
    private struct Job: @unchecked Sendable {
        // The body only runs while its caller is suspended waiting for it (see `run`).
        let body: (any SQLDatabase) async throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
        /// The event loop the caller waits on: it is resumed there, so that a run's task stays on
        /// the loop of its connections instead of landing on any loop after each write.
        let loop: (any EventLoop)?
    }

    private let pending = NIOLockedValueBox([Job]())
    private let wake: AsyncStream<Void>.Continuation
    private let writerTask: Task<Void, Never>
    private let maxGroup: Int

    /// How far below the event loops the writer's thread runs (nice steps). When the cores are
    /// saturated, the loops, which carry every open stream and `/health`, go first, and the writes
    /// that wait meanwhile join bigger groups (fewer commits and fsyncs for the same work). At
    /// 10,000 streams with 250 opened a second on 2 cores (bench/streams.sh), delta and /health
    /// p99 about halved, and 30,000 transactions took 17,226 commits instead of 23,202.
    static let writerNiceness: Int32 = 10

    /// `database` is the writer connection; its statements, COMMIT's fsync included, run on the
    /// group's own thread.
    init(database: any SQLDatabase, maxGroup: Int = 128) {
        let (signals, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.wake = wake
        self.maxGroup = maxGroup
        let pending = self.pending
        // The writer runs its statements in place: on a thread of its own, never on an event loop.
        let thread = ThreadExecutor(name: "sqlite-writer", niceness: Self.writerNiceness)
        writerTask = Task(executorPreference: thread) {
            defer { thread.stop() }
            for await _ in signals {
                while true {
                    var group = pending.withLockedValue { jobs -> [Job] in
                        let group = Array(jobs.prefix(maxGroup))
                        jobs.removeFirst(group.count)
                        return group
                    }
                    if group.isEmpty { break }
                    await Self.commit(&group, on: database)
                }
            }
        }
    }

    /// Runs `body` in a transaction of the next group and returns its result once committed.
    func run<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        let result = try await withoutActuallyEscaping(body) { escapable -> any Sendable in
            let job = { (database: any SQLDatabase) async throws -> any Sendable in try await escapable(database) }
            return try await withCheckedThrowingContinuation { continuation in
                let loop = MultiThreadedEventLoopGroup.currentEventLoop
                pending.withLockedValue { $0.append(Job(body: job, continuation: continuation, loop: loop)) }
                wake.yield()
            }
        }
        guard let typed = result as? T else { throw DomainError.server("a transaction returned an unexpected result") }
        return typed
    }

    /// Commits the group and empties it: no reference to a body may outlive its caller's wait.
    private static func commit(_ group: inout [Job], on database: any SQLDatabase) async {
        var outcomes: [Result<any Sendable, any Error>] = []
        do {
            try await database.raw("BEGIN IMMEDIATE").run()
            // A group of one needs no savepoint: if it throws, the whole transaction is its own.
            if group.count == 1, let job = group.first {
                outcomes.append(.success(try await job.body(database)))
            } else {
                try await runInSavepoints(group, on: database, outcomes: &outcomes)
            }
            let committing = ContinuousClock.now
            try await database.raw("COMMIT").run()
            AppMetrics.groupCommit(size: group.count, commit: .now - committing)
        } catch {
            // The group's own statements failed, or its only job threw: none of it is written,
            // and every caller hears so.
            try? await database.raw("ROLLBACK").run()
            outcomes = group.map { _ in .failure(error) }
        }
        // The bodies must be released before their callers resume.
        let waiters = group.map { ($0.continuation, $0.loop) }
        group.removeAll()
        for ((continuation, loop), outcome) in zip(waiters, outcomes) {
            if let loop {
                loop.execute { continuation.resume(with: outcome) }
            } else {
                continuation.resume(with: outcome)
            }
        }
    }

    /// Runs each job of a group in a savepoint of its own: one that throws is rolled back alone.
    private static func runInSavepoints(_ group: [Job], on database: any SQLDatabase,
                                        outcomes: inout [Result<any Sendable, any Error>]) async throws {
        for job in group {
            try await database.raw("SAVEPOINT job").run()
            do {
                let value = try await job.body(database)
                try await database.raw("RELEASE job").run()
                outcomes.append(.success(value))
            } catch {
                // This job's writes go; the transaction and the others' writes stay.
                try await database.raw("ROLLBACK TO job").run()
                try await database.raw("RELEASE job").run()
                outcomes.append(.failure(error))
            }
        }
    }

    func shutdown() {
        wake.finish()
        writerTask.cancel()
    }
}
