import NIOConcurrencyHelpers
import ServiceLifecycle

/// One server-sent event of a run: `event: name`, `data: json`.
public struct RunEvent: Sendable {
    public let name: String
    public let data: String
    /// Whether a stream of the run ends after this event: the run is done or waits for the client.
    /// Worked out once here: the hub and every stream ask it of each event, deltas included.
    public let endsStream: Bool

    public init(name: String, data: String) {
        self.name = name
        self.data = data
        endsStream = Self.endsStream(name)
    }

    public init(name: String, encoding value: some Encodable) {
        self.init(name: name, data: Self.data(encoding: value))
    }

    /// An event's JSON for a value (`{}` if it cannot be encoded), as its store also writes it.
    static func data(encoding value: some Encodable) -> String {
        (try? JSONCoding.string(value)) ?? "{}"
    }

    private static func endsStream(_ name: String) -> Bool {
        // Every event that ends a stream is a run's (`thread.run.…`); most events are not.
        guard name.utf8.starts(with: "thread.run.".utf8) else { return false }
        switch Name(rawValue: name) {
        case .runRequiresAction?, .runCompleted?, .runIncomplete?, .runFailed?, .runCancelled?, .runExpired?:
            return true
        default:
            return false
        }
    }
}

/// What a run's listener receives: the run's events, and a keep-alive after each silence of
/// `RunEventHub.keepAliveInterval` (so proxies keep a quiet stream open).
public enum RunStreamItem: Sendable {
    case event(RunEvent)
    case keepAlive
}

/// A listener's hold on a run's events: iterate it for the items published since the last
/// step, in order, in batches; `end()` lets go of them (the client went away) at once, instead
/// of when the run next ends a stream. A subscription dropped unread ends too.
public struct RunSubscription: AsyncSequence, Sendable {
    public typealias Element = [RunStreamItem]

    let buffer: RunEventBuffer
    let wakes: AsyncStream<Void>

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: RunEventBuffer
        var wakes: AsyncStream<Void>.Iterator

        /// Every item queued (waiting for one if none is); nil once ended and drained, or when
        /// the waiting task is cancelled.
        public mutating func next() async -> [RunStreamItem]? {
            while true {
                let batch = buffer.take()
                if !batch.isEmpty { return batch }
                guard await wakes.next() != nil else {
                    let rest = buffer.take()
                    return rest.isEmpty ? nil : rest
                }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer, wakes: wakes.makeAsyncIterator())
    }

    public func end() { buffer.finish() }
}

/// Fans a run's events out to every listener of that run. The engine publishes every event;
/// with no listener a publish costs one dictionary lookup. A listener that goes away
/// changes nothing for the run. One ticker (`run()`, a service) keeps every silent listener
/// alive, so an open stream costs no task of its own beyond the one writing it.
public final class RunEventHub: Service, Sendable {
    private struct Listener {
        var id: Int
        var buffer: RunEventBuffer
        var lastSent: ContinuousClock.Instant
    }

    public static let keepAliveInterval: Duration = .seconds(15)

    private let listeners = NIOLockedValueBox([String: [Listener]]())
    private let nextID = NIOLockedValueBox(0)
    private let keepAliveInterval: Duration

    public init(keepAliveInterval: Duration = RunEventHub.keepAliveInterval) {
        self.keepAliveInterval = keepAliveInterval
    }

    /// Starts listening to a run's events from now on.
    public func subscribe(runID: String) -> RunSubscription {
        let id = nextID.withLockedValue { value -> Int in
            value += 1
            return value
        }
        let (buffer, wakes) = RunEventBuffer.make { [weak self] in
            self?.listeners.withLockedValue { table in
                table[runID]?.removeAll { $0.id == id }
                if table[runID]?.isEmpty == true { table[runID] = nil }
            }
        }
        listeners.withLockedValue { $0[runID, default: []].append(Listener(id: id, buffer: buffer, lastSent: .now)) }
        return RunSubscription(buffer: buffer, wakes: wakes)
    }

    /// Publishes an event; it is only built when someone listens to the run.
    public func publish(runID: String, _ makeEvent: @autoclosure () -> RunEvent) {
        let targets = stampedListeners(runID: runID)
        guard !targets.isEmpty else { return }
        deliver(makeEvent(), to: targets)
    }

    /// Publishes events that carry the same object (a step's `created` and `in_progress`, say):
    /// its JSON (`data`, often the text just stored) is built once, and only when someone listens.
    func publish(runID: String, _ names: [RunEvent.Name], data: @autoclosure () -> String) {
        let targets = stampedListeners(runID: runID)
        guard !targets.isEmpty else { return }
        let body = data()
        for name in names { deliver(RunEvent(name, data: body), to: targets) }
    }

    /// The run's listeners, each stamped as sent to now.
    private func stampedListeners(runID: String) -> [Listener] {
        listeners.withLockedValue { table -> [Listener] in
            // Stamped in place: a copy of the run's listeners per event would be an allocation per delta.
            guard let count = table[runID]?.count else { return [] }
            let now = ContinuousClock.now
            for index in 0..<count { table[runID]?[index].lastSent = now }
            return table[runID] ?? []
        }
    }

    private func deliver(_ event: RunEvent, to targets: [Listener]) {
        for target in targets {
            target.buffer.append(.event(event))
            if event.endsStream { target.buffer.finish() }
        }
    }

    /// Whether anyone listens to this run now (to skip building events nobody reads).
    public func hasListeners(runID: String) -> Bool {
        listeners.withLockedValue { $0[runID] != nil }
    }

    /// Sends a keep-alive to every listener that has heard nothing for the interval.
    func keepSilentListenersAlive(now: ContinuousClock.Instant = .now) {
        let due = listeners.withLockedValue { table -> [RunEventBuffer] in
            var due: [RunEventBuffer] = []
            for (runID, var listening) in table {
                var changed = false
                for index in listening.indices where now - listening[index].lastSent >= keepAliveInterval {
                    listening[index].lastSent = now
                    due.append(listening[index].buffer)
                    changed = true
                }
                if changed { table[runID] = listening }
            }
            return due
        }
        for buffer in due { buffer.append(.keepAlive) }
    }

    /// The keep-alive ticker: looks for silent listeners every second until shutdown.
    public func run() async throws {
        let tick = min(.seconds(1), keepAliveInterval)
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                self.keepSilentListenersAlive()
            }
        }
    }
}
