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
        /// A client cancelled it; it expired; the server stops; another node took it over.
        case cancel, expire, shutdown, fenced
    }

    private struct Entry {
        var lease: RunLease
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
    /// This node's own active runs the last beat saw without a task, as `id@epoch` (`recover`).
    private let ownWithoutTask = NIOLockedValueBox(Set<String>())
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

    var updates: RunTransitions { RunTransitions(store: store, hub: hub) }

    /// Starts (or resumes) a queued run this node holds under `lease`, in the background.
    /// `snapshot` is the run as its caller just stored it, which spares the engine reading it back.
    public func schedule(_ lease: RunLease, snapshot: Stored<Run>? = nil) {
        guard accepting.withLockedValue({ $0 }) else { return }
        let runID = lease.runID
        entries.withLockedValue { table in
            guard table[runID]?.task == nil else { return }
            table[runID] = Entry(lease: lease, task: nil, interruption: nil)
            // Pinned to the loop that schedules it: a request's connection's (LoopPinnedHTTP1Channel),
            // where the run's stream is written and, through that loop's HTTP client, its upstream read.
            table[runID]?.task = Task(executorPreference: EventLoopTaskExecutor.current) { [self] in
                await self.drive(lease, snapshot: snapshot)
            }
        }
    }

    private func drive(_ lease: RunLease, snapshot: Stored<Run>?) async {
        let runID = lease.runID
        do {
            // The task inherited the creating request's trace context: the run's span is its child.
            // Every log line of the run says which run (and, inherited, the request that created it).
            try await LogContext.$runID.withValue(runID) {
                try await withSpan("run", ofKind: .internal) { span in
                    span.attributes["assistants.run_id"] = runID
                    try await executor.execute(lease: lease, snapshot: snapshot)
                }
            }
        } catch {
            let interruption = entries.withLockedValue { $0[runID]?.interruption }
            // A run ended from outside before its task saw it is recorded by whoever ended it.
            if error is RunLease.Lost || interruption == .fenced {
                // Another node took the run over (this one stalled past the node timeout): it writes nothing more.
                logger.warning("run taken over by another node; this node's turn is abandoned", metadata: ["run_id": "\(runID)"])
            } else if !(error is RunStart.RunEnded && interruption == nil) {
                // The task is over; its cleanup must not be cancelled with it.
                await Task { [self] in
                    await self.settle(lease, error: error, interruption: interruption)
                }.value
            }
        }
        entries.withLockedValue { _ = $0.removeValue(forKey: runID) }
    }

    /// Ends a run whose turn threw: cancelled, expired, failed, or left for the next start.
    private func settle(_ lease: RunLease, error: any Error, interruption: Interruption?) async {
        let runID = lease.runID
        do {
            switch interruption {
            case .cancel?:
                try await updates.end(lease, as: .cancelled)
            case .expire?:
                try await updates.end(lease, as: .expired)
            case .shutdown?, .fenced?:
                logger.info("run left for the next start", metadata: ["run_id": "\(runID)"])
            case nil:
                let lastError = (error as? UpstreamError)?.lastError
                    ?? LastError(code: "server_error", message: "The run failed inside the server: \(error)")
                logger.warning("run failed", metadata: ["run_id": "\(runID)", "error": "\(lastError.message)"])
                try await updates.end(lease, as: .failed, error: lastError)
            }
        } catch is RunLease.Lost {
            logger.warning("run taken over by another node before its end was recorded", metadata: ["run_id": "\(runID)"])
        } catch {
            logger.error("could not record the end of a run", metadata: ["run_id": "\(runID)", "error": "\(error)"])
        }
    }

    /// Stops a run of this node's that a client cancelled (already stored as `cancelling`): its
    /// task is cancelled, or, when nothing runs it, it ends `cancelled` at once.
    public func cancel(_ lease: RunLease) async throws {
        if !interrupt(lease.runID, .cancel) {
            try await updates.end(lease, as: .cancelled)
        }
    }

    /// The runs of this node that a client on any node cancelled: told by a signal, or found
    /// every second. Each one's task is cancelled, or the run ends at once.
    func stopCancelled(only runID: String? = nil) async throws {
        for owned in try await store.cancellingRuns(ownedBy: nodeID) where runID == nil || owned.run.id == runID {
            try await cancel(RunLease(runID: owned.run.id, project: owned.project, owner: nodeID, epoch: owned.epoch))
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

    /// Runs that a dead process left queued, in progress or cancelling are resumed or ended: those
    /// of nodes that stopped beating, and this node's own that no task of it drives (its previous
    /// life's, or a task that could not record its end). Each run is adopted by one node only,
    /// and adopting bumps its epoch, which fences off the old owner should it wake up.
    ///
    /// A request commits a run (created, or queued again with tool outputs) before it hands the
    /// run to a task, so a beat can see one of this node's runs between the two. Past `startup`,
    /// one of its own runs is adopted only when two beats in a row see it without a task, with
    /// the same lease: else the adoption would fence off the task about to start.
    func recover(startup: Bool = false) async throws {
        let orphans = try await store.orphanedRuns(withStatus: [.queued, .in_progress, .cancelling], node: nodeID,
                                                   timeout: nodeTimeout, includeOwn: true,
                                                   skipping: { [entries] id in entries.withLockedValue { $0[id] != nil } })
        let seenBefore = ownWithoutTask.withLockedValue { $0 }
        var seenNow: Set<String> = []
        defer { ownWithoutTask.withLockedValue { $0 = seenNow } }
        for orphan in orphans {
            if orphan.owner == nodeID, !startup {
                let sighting = "\(orphan.run.id)@\(orphan.epoch)"
                seenNow.insert(sighting)
                guard seenBefore.contains(sighting) else { continue }
            }
            let (run, owner) = (orphan.run, orphan.owner)
            guard entries.withLockedValue({ $0[run.id] == nil }) else { continue }
            guard let lease = try await store.adopt(orphan, node: nodeID) else { continue }
            if owner != nodeID {
                logger.info("adopting run of a stopped node", metadata: ["run_id": "\(run.id)", "node": "\(owner ?? "none")"])
            }
            switch run.status {
            case .cancelling:
                try await updates.end(lease, as: .cancelled)
            case .in_progress:
                // Whatever the dead process had half-written of its last turn is dropped; the turn runs again.
                try await store.write(under: lease) { session in
                    for step in try await session.all(RunStep.self, parentID: run.id) where step.status == .in_progress {
                        if let messageID = step.step_details["message_creation"]?["message_id"]?.stringValue {
                            try await session.delete(.message, id: messageID)
                        }
                        try await session.delete(.runStep, id: step.id)
                    }
                }
                logger.info("resuming run", metadata: ["run_id": "\(run.id)"])
                schedule(lease)
            default:
                logger.info("resuming run", metadata: ["run_id": "\(run.id)"])
                schedule(lease)
            }
        }
    }

    /// Expires every active run past its `expires_at` that is this node's, or whose owner
    /// stopped beating (taken over first).
    func expireOverdue() async throws {
        for overdue in try await store.runsExpired(node: nodeID, timeout: nodeTimeout) {
            if overdue.owner == nodeID, interrupt(overdue.run.id, .expire) { continue }
            let lease = overdue.owner == nodeID
                ? RunLease(runID: overdue.run.id, project: overdue.project, owner: nodeID, epoch: overdue.epoch)
                : try await store.adopt(overdue, node: nodeID)
            guard let lease else { continue }
            try await updates.end(lease, as: .expired)
        }
    }

    /// Interrupts the runs whose lease another node has taken (this one stalled past the timeout).
    func dropLostLeases() async throws {
        let held = entries.withLockedValue { $0.values.map(\.lease) }
        for lease in try await store.lostLeases(held) { _ = interrupt(lease.runID, .fenced) }
    }

    public func run() async throws {
        do {
            try await store.heartbeat(node: nodeID)
            try await recover(startup: true)
            recovered.withLockedValue { $0 = true }
        } catch {
            logger.error("could not resume runs left by the last process", metadata: ["error": "\(error)"])
        }
        // A third of the timeout between heartbeats, and as often a look for runs of stopped nodes.
        let beatEvery = Duration.seconds(nodeTimeout) / 3
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Cancels asked for on other nodes, heard at once (PostgreSQL).
                    await self.store.listenForCancels(logger: self.logger) { runID in
                        do { try await self.stopCancelled(only: runID) } catch {
                            self.logger.error("could not stop a cancelled run", metadata: ["run_id": "\(runID)", "error": "\(error)"])
                        }
                    }
                }
                group.addTask { await self.tick(beatEvery: beatEvery) }
                // Both end when shutdown cancels them (the listener at once on SQLite).
                await group.waitForAll()
            }
        }
        await drain()
        // What is left is adopted by the other nodes now, or resumed by this one when it starts again.
        try? await store.removeNode(nodeID)
    }

    /// The engine's clockwork, each `expiryInterval`: expiries and cancels asked for on other
    /// nodes; each `beatEvery`, the heartbeat, lost leases and the runs of stopped nodes. A
    /// failure (the database gone a while) is logged and the loop goes on.
    private func tick(beatEvery: Duration) async {
        var lastBeat = ContinuousClock.now
        while !Task.isCancelled {
            do {
                try await expireOverdue()
                try await stopCancelled()
            } catch {
                logger.error("run expiry or cancel failed", metadata: ["error": "\(error)"])
            }
            if ContinuousClock.now - lastBeat >= beatEvery {
                lastBeat = .now
                do {
                    try await store.heartbeat(node: nodeID)
                    try await dropLostLeases()
                    try await recover(startup: !hasRecovered)
                    recovered.withLockedValue { $0 = true }
                } catch {
                    logger.error("heartbeat or adoption failed", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: expiryInterval)
        }
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
