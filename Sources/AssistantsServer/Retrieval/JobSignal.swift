import Foundation
import NIOConcurrencyHelpers

/// Wakes idle ingestion workers when this node queues a job: `signal` resumes one waiter, or is
/// kept for the next `wait` when none waits; `wait` also returns after its timeout or when its
/// task is cancelled, whichever comes first.
final class JobSignal: Sendable {
    private struct State {
        var pending = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        /// Waits whose timeout fired before they were registered.
        var expired: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    func signal() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.pending = min(state.pending + 1, 1024)
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume()
    }

    func wait(timeout: Duration) async {
        let id = state.withLockedValue { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLockedValue { state -> Bool in
                        if state.expired.remove(id) != nil { return true }
                        if state.pending > 0 {
                            state.pending -= 1
                            return true
                        }
                        state.waiters.append((id, continuation))
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
            _ = await group.next()
            group.cancelAll()
        }
        _ = state.withLockedValue { $0.expired.remove(id) }
    }

    /// Ends the wait `id`: resumes it if it waits, else marks it so that it does not start (`wait` clears the mark).
    private func expire(_ id: UInt64) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if let index = state.waiters.firstIndex(where: { $0.id == id }) {
                return state.waiters.remove(at: index).continuation
            }
            state.expired.insert(id)
            return nil
        }
        waiter?.resume()
    }
}
