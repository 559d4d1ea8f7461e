import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Tracing

/// Runs assistants asynchronously. Each run that is ready gets a task; the database holds its
/// progress at every step, so a restart resumes what a dead process left behind. As a service
/// it also expires runs past `expires_at` and, on shutdown, lets model calls finish within a
/// grace period before leaving the rest to be resumed.
public final class RunEngine: Service, Sendable {
    /// Why a run's task was stopped from outside.
    enum Interruption: Sendable {
        case cancel, expire, shutdown
    }

    private struct Entry {
        var task: Task<Void, Never>?
        var interruption: Interruption?
    }

    public let hub: RunEventHub
    let store: ObjectStore
    let executor: RunExecutor
    let logger: Logger
    let expiryInterval: Duration
    let shutdownGracePeriod: Duration
    /// This process among the servers sharing the database: the owner it writes on the runs it executes.
    public let nodeID: String
    /// Seconds without a heartbeat after which a node counts as dead and its runs are adopted.
    let nodeTimeout: Int
    private let entries = NIOLockedValueBox([String: Entry]())
    private let accepting = NIOLockedValueBox(true)
    private let recovered = NIOLockedValueBox(false)

    /// Whether start-up recovery (resuming the runs the last process left) has finished.
    public var hasRecovered: Bool { recovered.withLockedValue { $0 } }

    init(store: ObjectStore, executor: RunExecutor, hub: RunEventHub, logger: Logger, nodeID: String = "local",
         nodeTimeout: Int = 15, expiryInterval: Duration = .seconds(1), shutdownGracePeriod: Duration = .seconds(10)) {
        self.store = store
        self.executor = executor
        self.hub = hub
        self.logger = logger
        self.nodeID = nodeID
        self.nodeTimeout = max(3, nodeTimeout)
        self.expiryInterval = expiryInterval
        self.shutdownGracePeriod = shutdownGracePeriod
    }

    var updates: RunUpdates { RunUpdates(store: store, hub: hub) }

    /// Starts (or resumes) a queued run in the background. `snapshot` is the run as its caller
    /// just stored it, which spares the engine reading it back.
    public func schedule(runID: String, project: String, snapshot: Stored<Run>? = nil) {
        guard accepting.withLockedValue({ $0 }) else { return }
        entries.withLockedValue { table in
            guard table[runID]?.task == nil else { return }
            table[runID] = Entry(task: nil, interruption: nil)
            table[runID]?.task = Task { [self] in
                await self.drive(runID: runID, project: project, snapshot: snapshot)
            }
        }
    }

    private func drive(runID: String, project: String, snapshot: Stored<Run>?) async {
        do {
            // The task inherited the creating request's trace context: the run's span is its child.
            // Every log line of the run says which run (and, inherited, the request that created it).
            try await LogContext.$runID.withValue(runID) {
                try await withSpan("run", ofKind: .internal) { span in
                    span.attributes["assistants.run_id"] = runID
                    try await executor.execute(runID: runID, project: project, snapshot: snapshot)
                }
            }
        } catch {
            let interruption = entries.withLockedValue { $0[runID]?.interruption }
            // A run ended from outside before its task saw it is recorded by whoever ended it.
            if !(error is RunStart.RunEnded && interruption == nil) {
                // The task is over; its cleanup must not be cancelled with it.
                await Task { [self] in
                    await self.settle(runID: runID, project: project, error: error, interruption: interruption)
                }.value
            }
        }
        entries.withLockedValue { _ = $0.removeValue(forKey: runID) }
    }

    /// Ends a run whose turn threw: cancelled, expired, failed, or left for the next start.
    private func settle(runID: String, project: String, error: any Error, interruption: Interruption?) async {
        do {
            switch interruption {
            case .cancel?:
                try await updates.end(runID, project: project, as: .cancelled)
            case .expire?:
                try await updates.end(runID, project: project, as: .expired)
            case .shutdown?:
                logger.info("run left for the next start", metadata: ["run_id": "\(runID)"])
            case nil:
                let lastError = (error as? UpstreamError)?.lastError
                    ?? LastError(code: "server_error", message: "The run failed inside the server: \(error)")
                logger.warning("run failed", metadata: ["run_id": "\(runID)", "error": "\(lastError.message)"])
                try await updates.end(runID, project: project, as: .failed, error: lastError)
            }
        } catch {
            logger.error("could not record the end of a run", metadata: ["run_id": "\(runID)", "error": "\(error)"])
        }
    }

    /// Stops a run the client cancelled (already stored as `cancelling`): its task is cancelled,
    /// or, when nothing runs it, it ends `cancelled` at once.
    public func cancel(runID: String, project: String) async throws {
        let running = interrupt(runID, .cancel)
        if !running {
            try await updates.end(runID, project: project, as: .cancelled)
        }
    }

    /// Marks and cancels a run's task; false when no task runs it.
    private func interrupt(_ runID: String, _ reason: Interruption) -> Bool {
        let task = entries.withLockedValue { table -> Task<Void, Never>? in
            guard table[runID]?.task != nil else { return nil }
            table[runID]?.interruption = reason
            return table[runID]?.task
        }
        task?.cancel()
        return task != nil
    }

    /// Runs that a dead process left queued, in progress or cancelling are resumed or ended. At
    /// start (`includeOwn`) these are this node's own from its previous life and those of nodes
    /// that stopped beating; later, only the latter. Each run is adopted by one node only.
    func recover(includeOwn: Bool) async throws {
        let orphans = try await store.orphanedRuns(withStatus: [.queued, .in_progress, .cancelling], node: nodeID,
                                                   liveSince: unixNow() - nodeTimeout, includeOwn: includeOwn)
        for (project, run, owner) in orphans {
            guard entries.withLockedValue({ $0[run.id] == nil }) else { continue }
            if owner != nodeID {
                guard try await store.adopt(runID: run.id, from: owner, node: nodeID) else { continue }
                logger.info("adopting run of a stopped node", metadata: ["run_id": "\(run.id)", "node": "\(owner ?? "none")"])
            }
            switch run.status {
            case .cancelling:
                try await updates.end(run.id, project: project, as: .cancelled)
            case .in_progress:
                // Whatever the dead process had half-written of its last turn is dropped; the turn runs again.
                try await store.write(project: project) { session in
                    for step in try await session.all(RunStep.self, parentID: run.id) where step.status == .in_progress {
                        if let messageID = step.step_details["message_creation"]?["message_id"]?.stringValue {
                            try await session.delete(.message, id: messageID)
                        }
                        try await session.delete(.runStep, id: step.id)
                    }
                }
                logger.info("resuming run", metadata: ["run_id": "\(run.id)"])
                schedule(runID: run.id, project: project)
            default:
                logger.info("resuming run", metadata: ["run_id": "\(run.id)"])
                schedule(runID: run.id, project: project)
            }
        }
    }

    /// Expires every active run past its `expires_at`.
    func expireOverdue() async throws {
        for (project, run, _) in try await store.runsExpired(at: unixNow()) {
            if !interrupt(run.id, .expire) {
                try await updates.end(run.id, project: project, as: .expired)
            }
        }
    }

    public func run() async throws {
        do {
            try await store.heartbeat(node: nodeID, at: unixNow())
            try await recover(includeOwn: true)
            recovered.withLockedValue { $0 = true }
        } catch {
            logger.error("could not resume runs left by the last process", metadata: ["error": "\(error)"])
        }
        // A third of the timeout between heartbeats, and as often a look for runs of stopped nodes.
        let beatEvery = nodeTimeout / 3
        await cancelWhenGracefulShutdown {
            var lastBeat = unixNow()
            while !Task.isCancelled {
                do {
                    try await self.expireOverdue()
                } catch {
                    self.logger.error("run expiry failed", metadata: ["error": "\(error)"])
                }
                if unixNow() - lastBeat >= beatEvery {
                    lastBeat = unixNow()
                    do {
                        try await self.store.heartbeat(node: self.nodeID, at: lastBeat)
                        try await self.recover(includeOwn: !self.hasRecovered)
                        self.recovered.withLockedValue { $0 = true }
                    } catch {
                        self.logger.error("heartbeat or adoption failed", metadata: ["error": "\(error)"])
                    }
                }
                try? await Task.sleep(for: self.expiryInterval)
            }
        }
        await drain()
        // What is left is adopted by the other nodes now, or resumed by this one when it starts again.
        try? await store.removeNode(nodeID)
    }

    /// Shutdown: no new runs; in-flight turns get the grace period, then are left for the next start.
    func drain() async {
        accepting.withLockedValue { $0 = false }
        let deadline = ContinuousClock.now + shutdownGracePeriod
        while ContinuousClock.now < deadline, entries.withLockedValue({ !$0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let remaining = entries.withLockedValue { table in
            table.keys.map { ($0, table[$0]?.task) }
        }
        for (runID, _) in remaining { _ = interrupt(runID, .shutdown) }
        for (_, task) in remaining { await task?.value }
    }
}
