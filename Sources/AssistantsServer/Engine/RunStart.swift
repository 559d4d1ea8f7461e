import NIOConcurrencyHelpers

/// Records that the engine took a run up (`queued` → `in_progress`, `started_at`). A run someone
/// streams is recorded at once, by the transaction that queues it (`Runs`); otherwise
/// when the first thing the run makes is stored, or after `delay`, whichever comes first: an
/// instant answer then costs one transaction less, and a poller still sees `in_progress` within
/// `delay` of a model call that takes a while. A crash before it is recorded leaves the run
/// `queued`, which the next start resumes the same way.
final class RunStart: Sendable {
    static let delay: Duration = .milliseconds(50)

    let lease: RunLease
    let startedAt: Int
    private let updates: RunTransitions
    private let written: NIOLockedValueBox<Bool>

    init(lease: RunLease, startedAt: Int, updates: RunTransitions, written: Bool) {
        self.lease = lease
        self.startedAt = startedAt
        self.updates = updates
        self.written = NIOLockedValueBox(written)
    }

    /// The run was ended (cancelled, expired) before the engine recorded its start.
    struct RunEnded: Error {}

    /// Writes `in_progress` unless done already; throws `RunEnded` when the run was ended
    /// meanwhile, so nothing more of it is stored.
    func ensureWritten() async throws {
        guard !written.withLockedValue({ $0 }) else { return }
        let startedAt = startedAt
        var active = true
        try await updates.update(lease) { run, _ in
            guard run.status == .queued else {
                active = run.status == .in_progress
                return false
            }
            run.markStarted(at: startedAt)
            return true
        }
        written.withLockedValue { $0 = true }
        if !active { throw RunEnded() }
    }

    /// Writes `in_progress` after `delay` unless cancelled first; nil when it is written already.
    func writeLater() -> Task<Void, Never>? {
        guard !written.withLockedValue({ $0 }) else { return nil }
        return Task {
            do {
                try await Task.sleep(for: Self.delay)
                try await ensureWritten()
            } catch {}
        }
    }
}
