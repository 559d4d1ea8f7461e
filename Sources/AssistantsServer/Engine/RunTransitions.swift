import Foundation

/// Every status change of a run the engine holds, each one transaction under the run's lease
/// (a node that lost the run writes nothing) followed by its typed events: `in_progress`
/// (`update`, from RunStart), `requires_action` (`recordToolCalls`), `completed`, `incomplete`,
/// and the ends `failed`, `cancelled`, `expired` (`end`). The client's commands (create,
/// cancel, tool outputs) are `Runs`; together they are the run lifecycle's one owner.
struct RunTransitions {
    let store: ObjectStore
    let hub: RunEventHub

    /// Reads, changes and writes the run atomically, if `lease` still holds it (else
    /// `RunLease.Lost`); `change` returns false to leave it as it was. Returns the run as written.
    @discardableResult
    func update(_ lease: RunLease, _ change: (inout Run, StoreSession) async throws -> Bool) async throws -> Stored<Run>? {
        try await store.write(under: lease) { session -> Stored<Run>? in
            guard var run = try await session.getForUpdate(Run.self, id: lease.runID) else { return nil }
            guard try await change(&run, session) else { return nil }
            return Stored(run, body: try await session.update(run))
        }
    }

    /// Counts the run's new status and announces it with the JSON it was just stored as.
    func publish(_ run: Stored<Run>, _ name: RunEvent.Name) {
        AppMetrics.runTransition(to: run.object.status.rawValue, createdAt: run.object.created_at)
        hub.publish(runID: run.object.id, [name], data: run.body)
    }

    /// Ends an active run as `failed`, `cancelled` or `expired`, under the `lease` of the node
    /// that holds it: its open steps and message end too.
    func end(_ lease: RunLease, as status: Run.Status, error: LastError? = nil) async throws {
        let now = unixNow()
        let result = try await store.write(under: lease) { session -> (Stored<Run>, [Stored<RunStep>], [Stored<Message>])? in
            guard var run = try await session.getForUpdate(Run.self, id: lease.runID), !run.status.isTerminal else { return nil }
            run.status = status
            run.required_action = nil
            run.expires_at = nil
            switch status {
            case .failed:
                run.failed_at = now
                run.last_error = error
            case .cancelled:
                run.cancelled_at = now
            default:
                break
            }
            var endedSteps: [Stored<RunStep>] = []
            for var step in try await session.all(RunStep.self, parentID: run.id) where step.status == .in_progress {
                switch status {
                case .failed:
                    step.status = .failed
                    step.failed_at = now
                    step.last_error = error
                case .cancelled:
                    step.status = .cancelled
                    step.cancelled_at = now
                default:
                    step.status = .expired
                    step.expired_at = now
                }
                endedSteps.append(Stored(step, body: try await session.update(step)))
            }
            var endedMessages: [Stored<Message>] = []
            for var message in try await session.all(Message.self, parentID: run.thread_id)
            where message.run_id == run.id && message.status == .in_progress {
                message.status = .incomplete
                message.incomplete_at = now
                message.completed_at = nil
                message.incomplete_details = IncompleteDetails(
                    reason: status == .failed ? "run_failed" : status == .cancelled ? "run_cancelled" : "run_expired")
                endedMessages.append(Stored(message, body: try await session.update(message)))
            }
            return (Stored(run, body: try await session.update(run)), endedSteps, endedMessages)
        }
        guard let (run, steps, messages) = result else { return }
        for message in messages {
            hub.publish(runID: lease.runID, [.messageIncomplete], data: message.body)
        }
        for step in steps {
            hub.publish(runID: lease.runID, [.step(step.object.status)], data: step.body)
        }
        publish(run, .run(status))
    }

    /// The model called tools: the step records them (server-side results included). With
    /// function calls among them the run waits for the client's outputs (`requires_action`);
    /// otherwise the step completes and the run goes on (true). A run ended meanwhile is cancelled.
    func recordToolCalls(_ calls: [ToolCall], functionCalls: [ToolCall], serverResults: [String: JSONValue], step: RunStep,
                         usage: Usage, known: Stored<Run>?, lease: RunLease) async throws -> Bool {
        let now = unixNow()
        let result = try await store.write(under: lease) { session -> (Stored<Run>, RunStep)? in
            var step = step
            step.step_details = ["type": "tool_calls", "tool_calls": .array(calls.map { call in
                serverResults[call.id] ?? [
                    "id": .string(call.id), "type": "function",
                    "function": ["name": .string(call.function.name), "arguments": .string(call.function.arguments), "output": .null],
                ]
            })]
            guard var run = try await session.getForUpdate(Run.self, id: lease.runID, known: known), run.status == .in_progress else {
                try await session.update(step)
                return nil
            }
            run.usage = (run.usage ?? Usage()) + usage
            if functionCalls.isEmpty {
                step.status = .completed
                step.completed_at = now
                step.usage = usage
            } else {
                run.status = .requires_action
                run.required_action = RequiredAction(toolCalls: functionCalls)
            }
            try await session.update(step)
            return (Stored(run, body: try await session.update(run)), step)
        }
        guard let (updated, finalStep) = result else {
            try await end(lease, as: .cancelled)
            return false
        }
        if functionCalls.isEmpty {
            hub.publish(runID: lease.runID, RunEvent(.stepCompleted, encoding: finalStep.forClient(includeSearchContent: false)))
            return true
        }
        publish(updated, .runRequiresAction)
        return false
    }

    /// The model answered: its message (with `content` set by the caller), the step and the run
    /// complete. `stored` says whether the message and step are in the database yet.
    func complete(message: Message?, step: RunStep?, stored: Bool, usage: Usage, startedAt: Int?,
                  known: Stored<Run>?, lease: RunLease) async throws {
        let finished = try await finishTurn(as: .completed, message: message, step: step, stored: stored, usage: usage,
                                            startedAt: startedAt, known: known, lease: lease)
        if !finished { try await end(lease, as: .cancelled) }
    }

    /// A token budget ran out: the run ends `incomplete` (`reason`), its message too.
    func finishIncomplete(reason: String, message: Message?, step: RunStep?, usage: Usage, startedAt: Int?,
                          known: Stored<Run>?, lease: RunLease) async throws {
        _ = try await finishTurn(as: .incomplete, incompleteReason: reason, message: message, step: step, stored: true,
                                 usage: usage, startedAt: startedAt, known: known, lease: lease)
    }

    /// The last write of a run's last turn: its message (`completed`, or `incomplete` for lack of
    /// tokens), its message_creation step and the run's final status; false when the run had
    /// ended meanwhile. A run still `queued` (answered before its start was recorded) starts too.
    private func finishTurn(as status: Run.Status, incompleteReason: String? = nil, message: Message?, step: RunStep?, stored: Bool,
                            usage: Usage, startedAt: Int?, known: Stored<Run>?, lease: RunLease) async throws -> Bool {
        let now = unixNow()
        let outcome = try await store.write(under: lease) { session -> (Stored<Run>, String?, String?)? in
            guard var run = try await session.getForUpdate(Run.self, id: lease.runID, known: known),
                  run.status == .in_progress || run.status == .queued else { return nil }
            run.markStarted(at: startedAt ?? now)
            var message = message
            var step = step
            step?.status = .completed
            step?.completed_at = now
            step?.usage = usage
            if let incompleteReason {
                message?.status = .incomplete
                message?.completed_at = nil
                message?.incomplete_at = now
                message?.incomplete_details = IncompleteDetails(reason: "max_tokens")
                run.incomplete_details = IncompleteDetails(reason: incompleteReason)
            } else {
                message?.status = .completed
                message?.completed_at = now
                run.completed_at = now
            }
            // The JSON each is stored as is what its event carries.
            var stepBody, messageBody: String?
            if let step { stepBody = try await stored ? session.update(step) : session.insert(step) }
            if let message { messageBody = try await stored ? session.update(message) : session.insert(message) }
            run.status = status
            run.expires_at = nil
            run.usage = (run.usage ?? Usage()) + usage
            return (Stored(run, body: try await session.update(run)), messageBody, stepBody)
        }
        guard let (finished, message, step) = outcome else { return false }
        if let message { hub.publish(runID: lease.runID, [status == .completed ? .messageCompleted : .messageIncomplete], data: message) }
        if let step { hub.publish(runID: lease.runID, [.stepCompleted], data: step) }
        publish(finished, .run(status))
        return true
    }
}
