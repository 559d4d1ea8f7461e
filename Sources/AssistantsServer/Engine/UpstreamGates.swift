import NIOConcurrencyHelpers

/// A route's own cap on concurrent upstream calls (`max_connections` in the models file).
public struct ConnectionCap: Sendable, Equatable {
    /// The route it belongs to (`name:gpt-4o`, `prefix:llama`): each capped route has its own count.
    public var route: String
    public var max: Int
}

/// A counting semaphore with a FIFO queue of waiters; a waiter whose task is cancelled leaves the
/// queue at once. One holds each upstream route's connections: a call takes a permit for as long
/// as its response streams.
final class ConnectionGate: Sendable {
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

/// The gates of every upstream: a route with its own `max_connections` has one of its own, every
/// other route shares one per upstream host and port, of `defaultLimit`
/// (`ASSISTANTS_UPSTREAM_MAX_CONNECTIONS`). A call past its gate's limit waits, in order, for as
/// long as its run goes on, rather than in the HTTP client's pool, which fails a request that
/// waits longer than the connect timeout. Past the routes' gates, `total` bounds all upstream
/// connections together by the descriptors left beside the client connections, so that a call
/// waits for one rather than failing to open a socket (EMFILE).
final class UpstreamGates: Sendable {
    static let defaultLimit = 256

    let defaultLimit: Int
    /// All upstream calls together; nil: unbounded.
    let total: ConnectionGate?
    private let gates = NIOLockedValueBox([String: ConnectionGate]())

    init(defaultLimit: Int = UpstreamGates.defaultLimit, total: Int? = nil) {
        self.defaultLimit = max(1, defaultLimit)
        self.total = total.map { ConnectionGate(limit: $0) }
    }

    /// The upstream connections the descriptors allow: the open-files limit less the client
    /// connections (`maxConnections`) and a reserve for the database, files and processes.
    static func descriptorBudget(openFilesLimit: Int, maxConnections: Int) -> Int {
        max(16, openFilesLimit - maxConnections - 256)
    }

    /// Runs `body` holding a permit of the endpoint's gate, then one of `total`.
    func withPermit<T>(for endpoint: UpstreamEndpoint, _ body: () async throws -> T) async throws -> T {
        try await gate(for: endpoint).withPermit {
            guard let total else { return try await body() }
            return try await total.withPermit(body)
        }
    }

    func gate(for endpoint: UpstreamEndpoint) -> ConnectionGate {
        let key: String, limit: Int
        if let cap = endpoint.connectionCap {
            (key, limit) = ("route \(cap.route)", cap.max)
        } else {
            (key, limit) = ("host \(endpoint.metricsRoute)", defaultLimit)
        }
        return gates.withLockedValue { gates in
            if let gate = gates[key] { return gate }
            let gate = ConnectionGate(limit: limit)
            gates[key] = gate
            return gate
        }
    }
}
