import Testing
@testable import AssistantsServer

/// The hub's fan-out, its keep-alives for silent listeners, and letting go of a listener.
@Suite struct RunEventHubTests {
    /// The items a subscription has buffered, without waiting for more.
    static func buffered(_ subscription: RunSubscription) async -> [String] {
        subscription.end()
        var names: [String] = []
        for await batch in subscription {
            for item in batch {
                switch item {
                case .event(let event): names.append(event.name)
                case .keepAlive: names.append("keep-alive")
                }
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

    /// Builds of an event's JSON, counted across the hub's calls.
    final class BuildCount: @unchecked Sendable {
        var value = 0
        func json(_ text: String) -> String {
            value += 1
            return text
        }
    }

    @Test func eventsThatShareAnObjectBuildItsJSONOnceAndOnlyForAListener() async {
        let hub = RunEventHub()
        let builds = BuildCount()
        hub.publish(runID: "run_a", [.stepCreated, .stepInProgress], data: builds.json(#"{"id":"step_1"}"#))
        #expect(builds.value == 0, "nobody listens: the JSON is not built")

        let first = hub.subscribe(runID: "run_a")
        let second = hub.subscribe(runID: "run_a")
        hub.publish(runID: "run_a", [.stepCreated, .stepInProgress], data: builds.json(#"{"id":"step_1"}"#))
        #expect(builds.value == 1, "built once for both events and both listeners")

        hub.publish(runID: "run_a", [.messageCompleted, .runCompleted], data: builds.json("{}"))
        #expect(!hub.hasListeners(runID: "run_a"), "a run-ending name among them still ends the streams")
        for subscription in [first, second] {
            var events: [RunEvent] = []
            for await batch in subscription {
                for case .event(let event) in batch { events.append(event) }
            }
            #expect(events.map(\.name) == [
                "thread.run.step.created", "thread.run.step.in_progress",
                "thread.message.completed", "thread.run.completed",
            ])
            #expect(events.prefix(2).allSatisfy { $0.data == #"{"id":"step_1"}"# })
        }
    }

    @Test func anEventThatEndsTheStreamFinishesIt() async {
        let hub = RunEventHub()
        let subscription = hub.subscribe(runID: "run_a")
        hub.publish(runID: "run_a", RunEvent(name: "thread.run.completed", data: "{}"))
        #expect(await Self.buffered(subscription) == ["thread.run.completed"])
        #expect(!hub.hasListeners(runID: "run_a"))
    }

    @Test func eventsPublishedTogetherAreTakenTogether() async {
        let hub = RunEventHub()
        let subscription = hub.subscribe(runID: "run_a")
        for name in ["thread.run.in_progress", "thread.run.step.created", "thread.message.created"] {
            hub.publish(runID: "run_a", RunEvent(name: name, data: "{}"))
        }
        var batches = subscription.makeAsyncIterator()
        #expect(await batches.next()?.count == 3, "one write for the three, not three")
        hub.publish(runID: "run_a", RunEvent(name: "thread.message.delta", data: "{}"))
        #expect(await batches.next()?.count == 1)
        subscription.end()
        #expect(await batches.next() == nil)
    }

    @Test func aWaitingListenerWakesForTheNextEvent() async {
        let hub = RunEventHub()
        let subscription = hub.subscribe(runID: "run_a")
        async let names: [String] = {
            var names: [String] = []
            for await batch in subscription {
                for case .event(let event) in batch { names.append(event.name) }
            }
            return names
        }()
        try? await Task.sleep(for: .milliseconds(20))
        hub.publish(runID: "run_a", RunEvent(name: "thread.message.delta", data: "{}"))
        try? await Task.sleep(for: .milliseconds(20))
        hub.publish(runID: "run_a", RunEvent(name: "thread.run.completed", data: "{}"))
        #expect(await names == ["thread.message.delta", "thread.run.completed"])
    }

    @Test func aCancelledListenerLetsGoOfTheRun() async {
        let hub = RunEventHub()
        let subscription = hub.subscribe(runID: "run_a")
        let waiting = Task {
            var batches = subscription.makeAsyncIterator()
            return await batches.next()
        }
        try? await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        #expect(await waiting.value == nil)
        #expect(!hub.hasListeners(runID: "run_a"))
    }

    @Test func aSubscriptionDroppedWithoutEndLetsGoOfTheRun() {
        let hub = RunEventHub()
        do {
            let subscription = hub.subscribe(runID: "run_a")
            #expect(hub.hasListeners(runID: "run_a"))
            _ = subscription
        }
        #expect(!hub.hasListeners(runID: "run_a"), "e.g. a response never written")
    }

    /// A stream ends after the run's own end or its wait for tool outputs, and after nothing else.
    @Test func onlyTheEventsThatEndARunEndItsStream() {
        let ending: Set<RunEvent.Name> = [.runRequiresAction, .runCompleted, .runIncomplete, .runFailed, .runCancelled, .runExpired]
        for name in RunEvent.Name.allCases {
            #expect(RunEvent(name: name.rawValue, data: "{}").endsStream == ending.contains(name), "\(name.rawValue)")
        }
        for other in ["done", "error", "thread.run.", "thread.run.completed.x", ""] {
            #expect(!RunEvent(name: other, data: "{}").endsStream, "\(other)")
        }
    }
}
