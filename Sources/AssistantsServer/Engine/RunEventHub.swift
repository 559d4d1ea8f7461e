import NIOConcurrencyHelpers

/// One server-sent event of a run: `event: name`, `data: json`.
public struct RunEvent: Sendable {
    public var name: String
    public var data: String

    public init(name: String, data: String) {
        self.name = name
        self.data = data
    }

    public init(name: String, encoding value: some Encodable) {
        self.name = name
        self.data = (try? JSONCoding.string(value)) ?? "{}"
    }

    /// Whether a stream of the run ends after this event: the run is done or waits for the client.
    public var endsStream: Bool {
        switch Name(rawValue: name) {
        case .runRequiresAction?, .runCompleted?, .runIncomplete?, .runFailed?, .runCancelled?, .runExpired?:
            return true
        default:
            return false
        }
    }
}

/// Fans a run's events out to every listener of that run. The engine publishes every event;
/// with no listener a publish costs one dictionary lookup. A listener that goes away
/// changes nothing for the run.
public final class RunEventHub: Sendable {
    private struct Listener {
        var id: Int
        var continuation: AsyncStream<RunEvent>.Continuation
    }

    private let listeners = NIOLockedValueBox([String: [Listener]]())
    private let nextID = NIOLockedValueBox(0)

    public init() {}

    /// Starts listening to a run's events from now on.
    public func subscribe(runID: String) -> AsyncStream<RunEvent> {
        let id = nextID.withLockedValue { value -> Int in
            value += 1
            return value
        }
        let (stream, continuation) = AsyncStream.makeStream(of: RunEvent.self, bufferingPolicy: .unbounded)
        listeners.withLockedValue { $0[runID, default: []].append(Listener(id: id, continuation: continuation)) }
        continuation.onTermination = { [weak self] _ in
            self?.listeners.withLockedValue { table in
                table[runID]?.removeAll { $0.id == id }
                if table[runID]?.isEmpty == true { table[runID] = nil }
            }
        }
        return stream
    }

    /// Publishes an event; it is only built when someone listens to the run.
    public func publish(runID: String, _ makeEvent: @autoclosure () -> RunEvent) {
        let targets = listeners.withLockedValue { $0[runID] ?? [] }
        guard !targets.isEmpty else { return }
        let event = makeEvent()
        for target in targets {
            target.continuation.yield(event)
            if event.endsStream { target.continuation.finish() }
        }
    }

    /// Whether anyone listens to this run now (to skip building events nobody reads).
    public func hasListeners(runID: String) -> Bool {
        listeners.withLockedValue { $0[runID] != nil }
    }
}
