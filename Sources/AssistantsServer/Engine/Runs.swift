/// The run lifecycle as clients drive it: create, create with a thread, cancel, submit tool
/// outputs, modify. Each call is one transaction that checks the state machine (NOTES.md) and
/// the thread's one-active-run rule, records the transition with the run's lease, and then
/// publishes its events and hands the run to the engine, which owns every transition after.
/// Controllers parse, call this and encode; nothing here knows of HTTP.
struct Runs: Sendable {
    let store: ObjectStore
    let engine: RunEngine
    let library: VectorStoreLibrary
    /// Holds a start while this node's event loop is behind (`RunAdmission`).
    let admission: RunAdmission

    var hub: RunEventHub { engine.hub }

    /// A run handed to the engine: as stored, with its events for a client that streams them.
    struct Started {
        var run: Stored<Run>
        var events: RunSubscription?
        /// Events the stream sends before the run's own (`thread.created`).
        var leading: [RunEvent] = []
    }

    /// A new run on an existing thread, after the `additional` messages; `makeRun` configures it
    /// from its assistant. The thread's row is locked first, so of two concurrent creates (on any
    /// servers sharing the database) the second sees the first's run and gets the API's 400.
    func create(threadID: String, assistantID: String, additional: [Message], stream: Bool, project: String,
                makeRun: (Assistant) throws -> Run) async throws -> Started {
        await admission.admit()
        let (run, lease, added) = try await store.write(project: project) { session -> (Stored<Run>, RunLease, [VectorStoreFile]) in
            guard var thread = try await session.getForUpdate(AssistantThread.self, id: threadID) else {
                throw DomainError.notFound("thread", id: threadID)
            }
            let assistant = try await session.require(Assistant.self, id: assistantID)
            if let active = try await session.activeRunID(threadID: threadID) {
                throw DomainError.invalidRequest("Thread \(threadID) already has an active run \(active).")
            }
            let run = try Self.pickedUp(makeRun(assistant), streamed: stream)
            for message in additional {
                try await message.checkFiles(session: session, blobs: library.ingestion.blobs)
                try await session.insert(message)
            }
            let added = try await library.attachToThread(additional, thread: &thread, session: session)
            if !added.isEmpty { try await session.update(thread) }
            let stored = Stored(run, body: try await session.insert(run))
            return (stored, try await session.takeOver(run: run.id, for: engine.nodeID), added)
        }
        library.startIngestion(added, project: project)
        return start(run, lease: lease, events: stream ? hub.subscribe(runID: run.object.id) : nil, created: true)
    }

    /// A new thread with its messages and a run on it, in one transaction.
    func createThreadAndRun(_ new: NewThread, assistantID: String, stream: Bool, project: String,
                            makeRun: (Assistant) throws -> Run) async throws -> Started {
        await admission.admit()
        let (thread, run, lease, added) = try await store.write(project: project) { session -> (Stored<AssistantThread>, Stored<Run>, RunLease, [VectorStoreFile]) in
            let assistant = try await session.require(Assistant.self, id: assistantID)
            let run = try Self.pickedUp(makeRun(assistant), streamed: stream)
            let (thread, added) = try await new.insert(library: library, session: session)
            let stored = Stored(run, body: try await session.insert(run))
            return (thread, stored, try await session.takeOver(run: run.id, for: engine.nodeID), added)
        }
        library.startIngestion(added, project: project)
        var started = start(run, lease: lease, events: stream ? hub.subscribe(runID: run.object.id) : nil, created: true)
        started.leading = [RunEvent(.threadCreated, data: thread.body)]
        return started
    }

    /// A queued run (new, or with its tool outputs) as the client's transaction stores it: a
    /// streamed one is picked up by this node at once, so it is stored `in_progress` (`started_at`
    /// set if it was not) in that same transaction, and the engine does not write its start
    /// again; one that is polled is stored `queued`, and its start is recorded later (`RunStart`).
    private static func pickedUp(_ run: Run, streamed: Bool) -> Run {
        guard streamed else { return run }
        var started = run
        started.markStarted(at: run.created_at)
        return started
    }

    /// `queued`, announced and handed to the engine (`thread.run.created` first for a new run);
    /// `events` is the client's subscription, if it streams, made before anything is published.
    /// A run stored `in_progress` by the same transaction (`pickedUp`) is announced `queued` as
    /// it was (a new one not started yet), then `in_progress`.
    private func start(_ stored: Stored<Run>, lease: RunLease, events: RunSubscription?, created: Bool) -> Started {
        let runID = stored.object.id
        let pickedUp = stored.object.status == .in_progress
        var queued = stored.body
        if pickedUp {
            var announced = stored.object
            announced.status = .queued
            if created { announced.started_at = nil }
            queued = RunEvent.data(encoding: announced)
        }
        if created { hub.publish(runID: runID, RunEvent(.runCreated, data: queued)) }
        AppMetrics.runTransition(to: "queued")
        hub.publish(runID: runID, RunEvent(.runQueued, data: queued))
        if pickedUp {
            AppMetrics.runTransition(to: "in_progress", createdAt: stored.object.created_at)
            hub.publish(runID: runID, RunEvent(.runInProgress, data: stored.body))
        }
        engine.schedule(lease, snapshot: stored)
        return Started(run: stored, events: events)
    }

    /// Changes what a client may change of a run (its metadata), whatever its status; returns it as stored.
    func modify(runID: String, threadID: String, project: String, _ change: (inout Run) -> Void) async throws -> Stored<Run> {
        try await store.write(project: project) { session in
            var run = try await Self.find(runID, in: threadID, session: session, forUpdate: true)
            change(&run)
            return Stored(run, body: try await session.update(run))
        }
    }

    /// `cancelling`, then `cancelled` by whichever node holds the run: this one at once; the
    /// owner, signalled, when another live node runs it; this one, after taking it over, when
    /// its owner has stopped. Returns the run as stored, `cancelling`.
    func cancel(runID: String, threadID: String, project: String) async throws -> Stored<Run> {
        let nodeID = engine.nodeID
        let (run, lease) = try await store.write(project: project) { session -> (Stored<Run>, RunLease?) in
            var run = try await Self.find(runID, in: threadID, session: session, forUpdate: true)
            guard [.queued, .in_progress, .requires_action].contains(run.status) else {
                throw DomainError.invalidRequest("Cannot cancel run with status '\(run.status.rawValue)'.")
            }
            run.status = .cancelling
            let stored = Stored(run, body: try await session.update(run))
            let held = try await session.lease(ofRun: runID)
            if held.owner == nodeID {
                return (stored, RunLease(runID: runID, project: project, owner: nodeID, epoch: held.epoch))
            }
            if let owner = held.owner, try await session.isLive(node: owner, timeout: engine.nodeTimeout) {
                try await store.signalCancel(of: runID, session: session)
                return (stored, nil)
            }
            return (stored, try await session.takeOver(run: runID, for: nodeID))
        }
        AppMetrics.runTransition(to: "cancelling")
        hub.publish(runID: runID, [.runCancelling], data: run.body)
        if let lease { try await engine.cancel(lease) }
        return run
    }

    /// Records the client's outputs for the pending calls: the run is `queued` again, held by this node.
    func submitToolOutputs(_ outputs: [(id: String, output: String)], runID: String, threadID: String, stream: Bool,
                           project: String) async throws -> Started {
        await admission.admit()
        let events = stream ? hub.subscribe(runID: runID) : nil
        let written: (Stored<Run>, Stored<RunStep>, RunLease)
        do {
            written = try await recordToolOutputs(outputs, runID: runID, threadID: threadID, stream: stream, project: project)
        } catch {
            events?.end()
            throw error
        }
        let (stored, step, lease) = written
        hub.publish(runID: runID, [.stepCompleted], data: step.body)
        return start(stored, lease: lease, events: events, created: false)
    }

    /// The transaction of `submitToolOutputs`: the outputs recorded, the run queued (or, streamed,
    /// picked up: `pickedUp`) and taken over.
    private func recordToolOutputs(_ outputs: [(id: String, output: String)], runID: String, threadID: String, stream: Bool,
                                   project: String) async throws -> (Stored<Run>, Stored<RunStep>, RunLease) {
        try await store.write(project: project) { session -> (Stored<Run>, Stored<RunStep>, RunLease) in
            var run = try await Self.find(runID, in: threadID, session: session, forUpdate: true)
            guard run.status == .requires_action, let pending = run.required_action?.submit_tool_outputs.tool_calls else {
                throw DomainError.invalidRequest(
                    "Runs in status \"\(run.status.rawValue)\" do not accept tool outputs.", code: nil)
            }
            let step = try await Self.recordOutputs(outputs, pending: pending, run: run, session: session)
            run.status = .queued
            run.required_action = nil
            run = Self.pickedUp(run, streamed: stream)
            let stored = Stored(run, body: try await session.update(run))
            return (stored, step, try await session.takeOver(run: runID, for: engine.nodeID))
        }
    }

    /// Checks that the outputs answer exactly the pending calls and completes the tool_calls step
    /// with them; returns the step as stored.
    static func recordOutputs(_ outputs: [(id: String, output: String)], pending: [ToolCall], run: Run, session: StoreSession) async throws -> Stored<RunStep> {
        let pendingIDs = Set(pending.map(\.id))
        var byID: [String: String] = [:]
        for (index, output) in outputs.enumerated() {
            guard pendingIDs.contains(output.id) else {
                throw DomainError.invalidRequest("Invalid 'tool_outputs[\(index)].tool_call_id': no pending tool call has id '\(output.id)'.",
                                              param: "tool_outputs[\(index)].tool_call_id")
            }
            guard byID[output.id] == nil else {
                throw DomainError.invalidRequest("Duplicate output for tool call '\(output.id)'.", param: "tool_outputs[\(index)].tool_call_id")
            }
            byID[output.id] = output.output
        }
        let missing = pending.map(\.id).filter { byID[$0] == nil }
        guard missing.isEmpty else {
            throw DomainError.invalidRequest(
                "Expected tool outputs for call_ids \(pending.map(\.id)), got \(outputs.map(\.id)). Missing: \(missing).", param: "tool_outputs")
        }
        let steps = try await session.all(RunStep.self, parentID: run.id)
        guard var step = steps.last(where: { $0.type == "tool_calls" && $0.status == .in_progress }) else {
            throw DomainError.server("The run's tool_calls step is missing.")
        }
        let calls = step.step_details["tool_calls"]?.arrayValue ?? []
        step.step_details = ["type": "tool_calls", "tool_calls": .array(calls.map { call in
            guard case .object(var fields) = call, let id = call["id"]?.stringValue, case .object(var function)? = fields["function"] else { return call }
            function["output"] = byID[id].map { .string($0) } ?? .null
            fields["function"] = .object(function)
            return .object(fields)
        })]
        step.status = .completed
        step.completed_at = unixNow()
        // The step's usage: what the run used beyond its steps that already carry theirs.
        let counted = steps.compactMap(\.usage).reduce(Usage(), +)
        let total = run.usage ?? Usage()
        step.usage = Usage(prompt_tokens: max(0, total.prompt_tokens - counted.prompt_tokens),
                           completion_tokens: max(0, total.completion_tokens - counted.completion_tokens))
        return Stored(step, body: try await session.update(step))
    }

    /// The run, if it exists on that thread; else the 404 for the thread or the run.
    /// `forUpdate` locks the run's row for a read-modify-write against the engine's own.
    static func find(_ runID: String, in threadID: String, session: StoreSession, forUpdate: Bool = false) async throws -> Run {
        guard try await session.exists(.thread, id: threadID) else { throw DomainError.notFound("thread", id: threadID) }
        let found = forUpdate ? try await session.getForUpdate(Run.self, id: runID) : try await session.get(Run.self, id: runID)
        guard let run = found, run.thread_id == threadID else {
            throw DomainError.notFound("run", id: runID)
        }
        return run
    }
}
