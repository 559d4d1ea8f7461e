import NIOConcurrencyHelpers
import SQLKit
import Testing
@testable import AssistantsServer

/// A streamed turn's message: announced with its first text while its insert commits, and
/// stored before anything else of it is written.
@Suite struct TurnStateTests {
    /// A database whose transactions wait while the test holds them.
    final class HeldWrites: DatabaseDriver {
        private struct State {
            var held = false
            var waiters: [CheckedContinuation<Void, Never>] = []
        }

        let inner: any DatabaseDriver
        private let state = NIOLockedValueBox(State())

        init(_ inner: any DatabaseDriver) { self.inner = inner }

        var dialect: DatabaseDialect { inner.dialect }
        var waiting: Int { state.withLockedValue { $0.waiters.count } }

        func hold() { state.withLockedValue { $0.held = true } }

        func release() {
            let waiters = state.withLockedValue { state in
                defer { state = State() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }

        func withReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
            try await inner.withReader(body)
        }

        func withTransaction<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let go = state.withLockedValue { state -> Bool in
                    guard state.held else { return true }
                    state.waiters.append(waiter)
                    return false
                }
                if go { waiter.resume() }
            }
            return try await inner.withTransaction(body)
        }

        func shutdown() async { await inner.shutdown() }
    }

    @Test func aStreamedMessagesFirstTextGoesOutWhileItsInsertCommitsAndLaterWritesWaitForIt() async throws {
        let directory = TestSupport.temporaryDirectory()
        let base = try await ObjectStore.open(url: "sqlite://\(directory)/db.sqlite", logger: TestSupport.logger)
        let thread = AssistantThread(id: IDPrefix.thread.makeID(), created_at: 0)
        var run = Run(id: IDPrefix.run.makeID(), created_at: 0, thread_id: thread.id, assistant_id: "asst_1", model: "m", instructions: "")
        run.status = .in_progress
        let stored = run
        let lease = try await base.write(project: "p") { session in
            try await session.insert(thread)
            try await session.insert(stored)
            return try await session.takeOver(run: stored.id, for: "node")
        }
        let held = HeldWrites(base.driver)
        let store = ObjectStore(driver: held)
        let hub = RunEventHub()
        let events = hub.subscribe(runID: run.id)
        let start = RunStart(lease: lease, startedAt: 0, updates: RunTransitions(store: store, hub: hub), written: true)
        let turn = TurnState(run: run, store: store, hub: hub, start: start)

        held.hold()
        // Were the text to wait for the commit, this lets it go on (and the checks below fail).
        let fallback = Task {
            try await Task.sleep(for: .seconds(5))
            held.release()
        }
        defer { fallback.cancel() }
        try await turn.handle(.text("Hel"))
        try await turn.handle(.text("lo"))
        var iterator = events.makeAsyncIterator()
        let published = (await iterator.next() ?? []).compactMap { item -> RunEvent? in
            if case .event(let event) = item { event } else { nil }
        }
        #expect(published.map(\.name) == [
            "thread.run.step.created", "thread.run.step.in_progress", "thread.message.created", "thread.message.in_progress",
            "thread.message.delta", "thread.message.delta",
        ], "the text is not held back for the commit")
        let messageID = try #require(turn.message?.id)
        #expect(published[2].data.contains(messageID))
        for _ in 0..<500 where held.waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(held.waiting == 1, "the message's insert waits for its commit meanwhile")
        #expect(try await base.read(project: "p") { try await $0.get(Message.self, id: messageID) } == nil)
        #expect(!turn.messageStored)

        // Closing the message waits for its insert, then updates it (inserting it again would fail).
        let release = Task {
            try await Task.sleep(for: .milliseconds(50))
            held.release()
        }
        try await turn.closeMessage()
        try await release.value
        #expect(turn.messageStored)
        let message = try #require(try await base.read(project: "p") { try await $0.get(Message.self, id: messageID) })
        #expect(message.status == .completed)
        #expect(message.content.first?["text"]?["value"] == "Hello")
        let stepID = try #require(turn.messageStep?.id)
        let step = try #require(try await base.read(project: "p") { try await $0.get(RunStep.self, id: stepID) })
        #expect(step.status == .completed)
        await base.driver.shutdown()
    }
}
