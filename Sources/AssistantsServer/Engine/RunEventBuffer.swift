import NIOConcurrencyHelpers

/// One listener's queue of a run's stream items: the hub appends, and the stream's writer takes
/// everything queued at once, so that events published together (a run starting, a message
/// completing) leave in one write instead of one write each. Unbounded, as the events of one
/// run are. The writer waits on an `AsyncStream` of wake-ups (at most one pending), which also
/// brings cancellation and the end of a subscription dropped unread.
final class RunEventBuffer: Sendable {
    private struct State {
        var items: [RunStreamItem] = []
        var finished = false
    }

    private let state = NIOLockedValueBox(State())
    private let wake: AsyncStream<Void>.Continuation

    /// The buffer, and the wake-ups its reader waits on. `onFinish` runs once, when the buffer is
    /// finished, its reader is cancelled, or the wake-ups are dropped unread.
    static func make(onFinish: @escaping @Sendable () -> Void) -> (RunEventBuffer, AsyncStream<Void>) {
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wake.onTermination = { _ in onFinish() }
        return (RunEventBuffer(wake: wake), wakes)
    }

    private init(wake: AsyncStream<Void>.Continuation) {
        self.wake = wake
    }

    /// Queues an item for the reader; after `finish()` it is dropped.
    func append(_ item: RunStreamItem) {
        let queued = state.withLockedValue { state -> Bool in
            guard !state.finished else { return false }
            state.items.append(item)
            return true
        }
        if queued { wake.yield() }
    }

    /// No more items: what is queued can still be taken.
    func finish() {
        state.withLockedValue { $0.finished = true }
        wake.finish()
    }

    /// The queued items, emptying the queue ([] when there are none).
    func take() -> [RunStreamItem] {
        state.withLockedValue { state in
            defer { state.items = [] }
            return state.items
        }
    }
}
