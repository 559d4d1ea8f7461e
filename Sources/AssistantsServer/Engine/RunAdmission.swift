import NIOCore
import NIOPosix

/// Holds the start of new model work (a run created, tool outputs submitted) while the event loop
/// it would run on is behind, so that under saturation the streams already open keep their pace
/// and new runs wait their turn instead of taking the cores from every open stream at once.
///
/// Each loop measures its own lag with a timer due every `interval`, while runs start on it: how
/// late the timer ran is how long anything queued on that loop now waits. A start goes ahead at
/// once when nobody waits and the last measure was under `lagLimit`; otherwise it waits in line,
/// and each tick that comes in under the limit lets the first in line go. Nobody waits longer
/// than `longestWait`: a node that stays saturated starts its runs late, never not at all. A loop
/// with no start for `idleAfter` stops its timer, and the first start after that goes ahead
/// unmeasured (then the timer runs again).
final class RunAdmission: Sendable {
    struct Limits: Sendable {
        /// A loop later than this is behind; zero admits everything at once (no timer either).
        var lagLimit: TimeAmount = .milliseconds(2)
        var interval: TimeAmount = .milliseconds(1)
        var longestWait: TimeAmount = .seconds(5)
        /// A loop with no start for this long stops measuring.
        var idleAfter: TimeAmount = .seconds(1)
    }

    private let loops: PerEventLoop<LoopAdmission>

    init(group: MultiThreadedEventLoopGroup = .singleton, limits: Limits = Limits()) {
        loops = limits.lagLimit > .zero ? PerEventLoop(group) { LoopAdmission(loop: $0, limits: limits) } : PerEventLoop()
    }

    /// Returns when the current event loop can take a new run; at once off the group's loops.
    /// A start that waits is not cancellable: it waits `longestWait` at most.
    func admit() async {
        // Synchronous up to the wait: `current` is the loop this thread runs.
        guard let admission = loops.current, let since = admission.enter() else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            admission.wait(continuation, since: since)
        }
        AppMetrics.runAdmissionWait(nanoseconds: (NIODeadline.now() - since).nanoseconds)
    }
}

/// One event loop's line of waiting starts and its lag timer; touched only on that loop's thread.
private final class LoopAdmission: @unchecked Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<Void, Never>
        let since: NIODeadline
    }

    private let loop: any EventLoop
    private let limits: RunAdmission.Limits
    private var waiting = CircularBuffer<Waiter>()
    private var ticking = false
    private var lastLag = TimeAmount.zero
    private var lastStart = NIODeadline.uptimeNanoseconds(0)

    init(loop: any EventLoop, limits: RunAdmission.Limits) {
        self.loop = loop
        self.limits = limits
    }

    /// A start on `loop`'s thread (`RunAdmission.admit` finds this by the current loop): nil if
    /// it may go at once (nobody waits, and the loop was not behind when last measured), else
    /// the time it began to wait, for `wait`.
    func enter() -> NIODeadline? {
        loop.preconditionInEventLoop()
        let now = NIODeadline.now()
        lastStart = now
        let measured = ticking
        startTicking(now: now)
        return waiting.isEmpty && (!measured || lastLag < limits.lagLimit) ? nil : now
    }

    /// Puts a start in line, on the loop's thread wherever the task resumed.
    func wait(_ continuation: CheckedContinuation<Void, Never>, since: NIODeadline) {
        let waiter = Waiter(continuation: continuation, since: since)
        if loop.inEventLoop {
            waiting.append(waiter)
        } else {
            loop.execute { [self] in waiting.append(waiter) }
        }
    }

    private func startTicking(now: NIODeadline) {
        guard !ticking else { return }
        ticking = true
        lastLag = .zero
        schedule(at: now + limits.interval)
    }

    private func schedule(at due: NIODeadline) {
        loop.scheduleTask(deadline: due) { [self] in tick(due: due) }
    }

    /// Measures the loop's lag and lets the first in line go if it is under the limit (and every
    /// start that waited `longestWait`), then comes again, or stops once the loop is idle.
    private func tick(due: NIODeadline) {
        let now = NIODeadline.now()
        lastLag = now - due
        var released: [CheckedContinuation<Void, Never>] = []
        while let first = waiting.first, now - first.since >= limits.longestWait {
            released.append(waiting.removeFirst().continuation)
        }
        if lastLag < limits.lagLimit, !waiting.isEmpty {
            released.append(waiting.removeFirst().continuation)
        }
        for continuation in released { continuation.resume() }
        if waiting.isEmpty && now - lastStart >= limits.idleAfter {
            ticking = false
            return
        }
        schedule(at: now + limits.interval)
    }
}
