import Foundation

/// The run's state changes that several parts of the engine make: each reads the stored run,
/// changes it and writes it back in one transaction, and publishes the matching events.
struct RunUpdates {
    let store: ObjectStore
    let hub: RunEventHub

    /// Reads, changes and writes the run atomically; `change` returns false to leave it as it was.
    /// Returns the run as written.
    @discardableResult
    func update(_ runID: String, project: String, _ change: (inout Run, StoreSession) async throws -> Bool) async throws -> Stored<Run>? {
        try await store.write(project: project) { session -> Stored<Run>? in
            guard var run = try await session.getForUpdate(Run.self, id: runID) else { return nil }
            guard try await change(&run, session) else { return nil }
            return Stored(run, body: try await session.update(run))
        }
    }

    func publish(_ run: Run, _ name: String) {
        AppMetrics.runTransition(to: run.status.rawValue, createdAt: run.created_at)
        hub.publish(runID: run.id, RunEvent(name: name, encoding: run))
    }

    /// Ends an active run as `failed`, `cancelled` or `expired`: its open steps and message end too.
    func end(_ runID: String, project: String, as status: Run.Status, error: LastError? = nil) async throws {
        let now = unixNow()
        let result = try await store.write(project: project) { session -> (Run, [RunStep], [Message])? in
            guard var run = try await session.getForUpdate(Run.self, id: runID), !run.status.isTerminal else { return nil }
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
            var endedSteps: [RunStep] = []
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
                try await session.update(step)
                endedSteps.append(step)
            }
            var endedMessages: [Message] = []
            for var message in try await session.all(Message.self, parentID: run.thread_id)
            where message.run_id == run.id && message.status == .in_progress {
                message.status = .incomplete
                message.incomplete_at = now
                message.completed_at = nil
                message.incomplete_details = IncompleteDetails(
                    reason: status == .failed ? "run_failed" : status == .cancelled ? "run_cancelled" : "run_expired")
                try await session.update(message)
                endedMessages.append(message)
            }
            try await session.update(run)
            return (run, endedSteps, endedMessages)
        }
        guard let (run, steps, messages) = result else { return }
        for message in messages {
            hub.publish(runID: run.id, RunEvent(name: "thread.message.incomplete", encoding: message))
        }
        for step in steps {
            hub.publish(runID: run.id, RunEvent(name: "thread.run.step.\(step.status.rawValue)", encoding: step))
        }
        publish(run, "thread.run.\(status.rawValue)")
    }
}
