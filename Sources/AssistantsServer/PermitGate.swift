import NIOConcurrencyHelpers

/// A counting semaphore with a FIFO queue of waiters that hold no thread; a waiter whose task is
/// cancelled leaves the queue at once. One bounds each upstream route's connections (a call holds
/// a permit for as long as its response streams), another the long child processes (`Offload`).
final class PermitGate: Sendable {
    private struct State {
        var available: Int
        var order: [UInt64] = []
        var head = 0
        var waiting: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        /// Ids handed out whose continuation is not yet queued or granted.
        var unqueued: Set<UInt64> = []
        /// Ids cancelled before they were queued.
        var cancelledEarly: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    let limit: Int
    private let state: NIOLockedValueBox<State>

    init(limit: Int) {
        self.limit = max(1, limit)
        state = NIOLockedValueBox(State(available: max(1, limit)))
    }

    /// Calls waiting for a permit now.
    var waiting: Int { state.withLockedValue { $0.waiting.count } }
    /// Permits held now.
    var inUse: Int { state.withLockedValue { limit - $0.available } }

    func withPermit<T>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    func acquire() async throws {
        try Task.checkCancellation()
        let id = state.withLockedValue { state -> UInt64 in
            state.nextID += 1
            state.unqueued.insert(state.nextID)
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Outcome { case granted, cancelled, queued }
                let outcome = state.withLockedValue { state -> Outcome in
                    state.unqueued.remove(id)
                    if state.cancelledEarly.remove(id) != nil { return .cancelled }
                    if state.available > 0 && state.waiting.isEmpty {
                        state.available -= 1
                        return .granted
                    }
                    state.waiting[id] = continuation
                    state.order.append(id)
                    return .queued
                }
                switch outcome {
                case .granted: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .queued: break
                }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state -> CheckedContinuation<Void, any Error>? in
                if let waiter = state.waiting.removeValue(forKey: id) { return waiter }
                if state.unqueued.contains(id) { state.cancelledEarly.insert(id) }
                return nil
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Hands the permit to the longest waiter, else returns it.
    func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Void, any Error>? in
            defer {
                if state.head > 1024 && state.head * 2 > state.order.count {
                    state.order.removeFirst(state.head)
                    state.head = 0
                }
            }
            while state.head < state.order.count {
                let id = state.order[state.head]
                state.head += 1
                if let waiter = state.waiting.removeValue(forKey: id) { return waiter }
            }
            state.order.removeAll(keepingCapacity: true)
            state.head = 0
            state.available += 1
            return nil
        }
        next?.resume()
    }
}
