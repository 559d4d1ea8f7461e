/// The names of the stream events a run sends (the spec's `AssistantStreamEvent`), so that every
/// place that publishes one names it from this list and a typo cannot reach a client.
extension RunEvent {
    enum Name: String, Sendable, CaseIterable {
        case threadCreated = "thread.created"
        case runCreated = "thread.run.created"
        case runQueued = "thread.run.queued"
        case runInProgress = "thread.run.in_progress"
        case runRequiresAction = "thread.run.requires_action"
        case runCompleted = "thread.run.completed"
        case runIncomplete = "thread.run.incomplete"
        case runFailed = "thread.run.failed"
        case runCancelling = "thread.run.cancelling"
        case runCancelled = "thread.run.cancelled"
        case runExpired = "thread.run.expired"
        case stepCreated = "thread.run.step.created"
        case stepInProgress = "thread.run.step.in_progress"
        case stepDelta = "thread.run.step.delta"
        case stepCompleted = "thread.run.step.completed"
        case stepFailed = "thread.run.step.failed"
        case stepCancelled = "thread.run.step.cancelled"
        case stepExpired = "thread.run.step.expired"
        case messageCreated = "thread.message.created"
        case messageInProgress = "thread.message.in_progress"
        case messageDelta = "thread.message.delta"
        case messageCompleted = "thread.message.completed"
        case messageIncomplete = "thread.message.incomplete"

        /// The event that announces a run's status.
        static func run(_ status: Run.Status) -> Name {
            switch status {
            case .queued: .runQueued
            case .in_progress: .runInProgress
            case .requires_action: .runRequiresAction
            case .cancelling: .runCancelling
            case .cancelled: .runCancelled
            case .failed: .runFailed
            case .completed: .runCompleted
            case .incomplete: .runIncomplete
            case .expired: .runExpired
            }
        }

        /// The event that announces a step's status.
        static func step(_ status: RunStep.Status) -> Name {
            switch status {
            case .in_progress: .stepInProgress
            case .cancelled: .stepCancelled
            case .failed: .stepFailed
            case .completed: .stepCompleted
            case .expired: .stepExpired
            }
        }
    }

    init(_ name: Name, data: String) {
        self.init(name: name.rawValue, data: data)
    }

    init(_ name: Name, encoding value: some Encodable) {
        self.init(name: name.rawValue, encoding: value)
    }
}
