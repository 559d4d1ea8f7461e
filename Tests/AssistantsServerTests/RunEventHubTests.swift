import Testing
@testable import AssistantsServer

/// The hub's fan-out, its keep-alives for silent listeners, and letting go of a listener.
@Suite struct RunEventHubTests {
    /// The items a subscription has buffered, without waiting for more.
    static func buffered(_ subscription: RunSubscription) async -> [String] {
        subscription.end()
        var names: [String] = []
        for await item in subscription.items {
            switch item {
            case .event(let event): names.append(event.name)
            case .keepAlive: names.append("keep-alive")
            }
        }
        return names
    }

    @Test func onlySilentListenersGetAKeepAlive() async {
        let hub = RunEventHub(keepAliveInterval: .seconds(15))
        let silent = hub.subscribe(runID: "run_a")
        let busy = hub.subscribe(runID: "run_b")
        let start = ContinuousClock.now
        hub.keepSilentListenersAlive(now: start + .seconds(14))
        hub.publish(runID: "run_b", RunEvent(name: "thread.message.delta", data: "{}"))
        // run_a has been silent 15 s since it subscribed; run_b heard an event 15 s minus a hair ago.
        hub.keepSilentListenersAlive(now: start + .seconds(15))
        // A second later: run_a's next keep-alive is a full interval after its first; run_b's
        // event (sent at about `start`) is now 16 s old.
        hub.keepSilentListenersAlive(now: start + .seconds(16))
        #expect(await Self.buffered(silent) == ["keep-alive"])
        #expect(await Self.buffered(busy) == ["thread.message.delta", "keep-alive"])
    }

    @Test func endingASubscriptionLetsGoOfTheRun() {
        let hub = RunEventHub()
        let first = hub.subscribe(runID: "run_a")
        let second = hub.subscribe(runID: "run_a")
        first.end()
        #expect(hub.hasListeners(runID: "run_a"))
        second.end()
        #expect(!hub.hasListeners(runID: "run_a"), "a client gone stops the run's events being built")
    }

    @Test func anEventThatEndsTheStreamFinishesIt() async {
        let hub = RunEventHub()
        let subscription = hub.subscribe(runID: "run_a")
        hub.publish(runID: "run_a", RunEvent(name: "thread.run.completed", data: "{}"))
        var names: [String] = []
        for await case .event(let event) in subscription.items { names.append(event.name) }
        #expect(names == ["thread.run.completed"])
        #expect(!hub.hasListeners(runID: "run_a"))
    }
}
