import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import AssistantsServer

/// The store, against SQLite and (when configured) PostgreSQL: the same suite for both.
@Suite struct StoreTests {
    static let databases = TestSupport.databases

    func withStore(_ url: String, _ body: (ObjectStore) async throws -> Void) async throws {
        let store = try await ObjectStore.open(url: url, logger: TestSupport.logger)
        do {
            try await body(store)
        } catch {
            await store.shutdown()
            throw error
        }
        await store.shutdown()
    }

    @Test(arguments: databases)
    func insertGetUpdateDelete(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            var assistant = Assistant(id: IDPrefix.assistant.makeID(), created_at: unixNow(), model: "m")
            assistant.name = "first"
            try await store.write(project: project) { try await $0.insert(assistant) }
            let loaded = try await store.read(project: project) { try await $0.get(Assistant.self, id: assistant.id) }
            #expect(loaded?.name == "first")
            #expect(loaded?.model == "m")

            assistant.name = nil
            try await store.write(project: project) { try await $0.update(assistant) }
            let body = try await store.read(project: project) { try await $0.body(.assistant, id: assistant.id) }
            #expect(body?.contains("\"name\":null") == true)

            let deleted = try await store.write(project: project) { try await $0.delete(.assistant, id: assistant.id) }
            #expect(deleted)
            let again = try await store.write(project: project) { try await $0.delete(.assistant, id: assistant.id) }
            #expect(!again)
            #expect(try await store.read(project: project) { try await $0.get(Assistant.self, id: assistant.id) } == nil)
        }
    }

    @Test(arguments: databases)
    func projectsDoNotSeeEachOther(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let (a, b) = (TestSupport.uniqueProject(), TestSupport.uniqueProject())
            let thread = AssistantThread(id: IDPrefix.thread.makeID(), created_at: unixNow())
            try await store.write(project: a) { try await $0.insert(thread) }
            #expect(try await store.read(project: b) { try await $0.get(AssistantThread.self, id: thread.id) } == nil)
            #expect(try await store.write(project: b) { try await $0.delete(.thread, id: thread.id) } == false)
            let page = try await store.read(project: b) { try await $0.list(.thread, page: PageRequest()) }
            #expect(page.ids.isEmpty)
            #expect(try await store.read(project: a) { try await $0.exists(.thread, id: thread.id) })
        }
    }

    @Test(arguments: databases)
    func listsPageInCreationOrderWithinOneSecond(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            let thread = AssistantThread(id: IDPrefix.thread.makeID(), created_at: 1000)
            var ids: [String] = []
            try await store.write(project: project) { session in
                try await session.insert(thread)
                for index in 0..<9 {
                    let message = Message(id: IDPrefix.message.makeID(), created_at: 1000, thread_id: thread.id, role: "user",
                                          content: [Message.textPart("\(index)")])
                    try await session.insert(message)
                    ids.append(message.id)
                }
            }
            // Ascending walk with after.
            var walked: [String] = []
            var after: String?
            for _ in 0..<10 {
                let page = try await store.read(project: project) {
                    try await $0.list(.message, parentID: thread.id, page: PageRequest(limit: 4, ascending: true, after: after))
                }
                walked += page.ids
                after = page.ids.last
                if !page.hasMore { break }
            }
            #expect(walked == ids)
            // Descending default, and a page after the last id is empty.
            let descending = try await store.read(project: project) {
                try await $0.list(.message, parentID: thread.id, page: PageRequest(limit: 100))
            }
            #expect(descending.ids == ids.reversed())
            #expect(!descending.hasMore)
            let empty = try await store.read(project: project) {
                try await $0.list(.message, parentID: thread.id, page: PageRequest(limit: 5, after: ids.first))
            }
            #expect(empty.ids.isEmpty && !empty.hasMore)
            // before: the items just before the cursor, in the requested order.
            let before = try await store.read(project: project) {
                try await $0.list(.message, parentID: thread.id, page: PageRequest(limit: 2, ascending: true, before: ids[5]))
            }
            #expect(before.ids == [ids[3], ids[4]])
            #expect(before.hasMore)
        }
    }

    @Test(arguments: databases)
    func transactionsRollBackAsAWhole(database: String) async throws {
        struct Boom: Error {}
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            let assistant = Assistant(id: IDPrefix.assistant.makeID(), created_at: unixNow(), model: "m")
            await #expect(throws: Boom.self) {
                try await store.write(project: project) { session in
                    try await session.insert(assistant)
                    throw Boom()
                }
            }
            #expect(try await store.read(project: project) { try await $0.get(Assistant.self, id: assistant.id) } == nil)
        }
    }

    @Test(arguments: databases)
    func activeRunsAndCascades(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            let thread = AssistantThread(id: IDPrefix.thread.makeID(), created_at: unixNow())
            var run = Run(id: IDPrefix.run.makeID(), created_at: unixNow(), thread_id: thread.id, assistant_id: "asst_x", model: "m", instructions: "")
            let step = RunStep(id: IDPrefix.step.makeID(), created_at: unixNow(), run: run, type: "tool_calls", step_details: ["type": "tool_calls", "tool_calls": []])
            try await store.write(project: project) { session in
                try await session.insert(thread)
                try await session.insert(run)
                try await session.insert(step)
            }
            #expect(try await store.read(project: project) { try await $0.activeRunID(threadID: thread.id) } == run.id)
            // A run nobody owns is one a restart resumes.
            let pending = try await store.orphanedRuns(withStatus: [.queued], node: "none", timeout: 15, includeOwn: false)
            #expect(pending.contains { $0.run.id == run.id && $0.project == project })
            run.status = .completed
            try await store.write(project: project) { try await $0.update(run) }
            #expect(try await store.read(project: project) { try await $0.activeRunID(threadID: thread.id) } == nil)
            try await store.write(project: project) { session in
                try await session.deleteRunSteps(ofThread: thread.id)
                try await session.deleteChildren(.run, parentID: thread.id)
            }
            #expect(try await store.read(project: project) { try await $0.get(RunStep.self, id: step.id) } == nil)
            #expect(try await store.read(project: project) { try await $0.get(Run.self, id: run.id) } == nil)
        }
    }

    @Test(arguments: databases)
    func runsExpiredAtNowAreActiveAndOverdue(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            let now = unixNow()
            func run(_ status: Run.Status, expiresAt: Int?) -> Run {
                var run = Run(id: IDPrefix.run.makeID(), created_at: now, thread_id: IDPrefix.thread.makeID(),
                              assistant_id: "asst_x", model: "m", instructions: "")
                run.status = status
                run.expires_at = expiresAt
                return run
            }
            let overdue = run(.requires_action, expiresAt: now - 5)
            let dueNow = run(.queued, expiresAt: now)
            let runs = [overdue, dueNow, run(.in_progress, expiresAt: now + 600), run(.completed, expiresAt: now - 5),
                        run(.cancelling, expiresAt: nil)]
            try await store.write(project: project) { session in
                for run in runs { try await session.insert(run) }
            }
            let expired = try await store.runsExpired(node: "me-\(project)", timeout: 15).filter { $0.project == project }
            #expect(expired.map(\.run.id) == [overdue.id, dueNow.id])
            #expect(expired.first?.run.status == .requires_action)
        }
    }

    @Test(arguments: databases)
    func runsOfStoppedNodesAreAdoptedOnce(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            let now = unixNow()
            let (live, dead, me) = ("live-\(project)", "dead-\(project)", "me-\(project)")
            try await store.heartbeat(node: live)
            try await store.heartbeat(node: dead, secondsAgo: 60)
            try await store.heartbeat(node: me)
            func run(_ status: Run.Status) -> Run {
                var run = Run(id: IDPrefix.run.makeID(), created_at: now, thread_id: IDPrefix.thread.makeID(),
                              assistant_id: "asst_x", model: "m", instructions: "")
                run.status = status
                return run
            }
            let ofLive = run(.in_progress), ofDead = run(.queued), ofDeadWaiting = run(.requires_action)
            let mine = run(.in_progress), ofUnknown = run(.cancelling), unowned = run(.queued)
            let owners = [(ofLive, live), (ofDead, dead), (ofDeadWaiting, dead), (mine, me), (ofUnknown, "gone-\(project)")]
            try await store.write(project: project) { session in
                for (run, owner) in owners {
                    try await session.insert(run)
                    _ = try await session.takeOver(run: run.id, for: owner)
                }
                try await session.insert(unowned)
            }
            func orphans(includeOwn: Bool) async throws -> [String: String?] {
                let found = try await store.orphanedRuns(withStatus: [.queued, .in_progress, .cancelling], node: me,
                                                         timeout: 15, includeOwn: includeOwn)
                return Dictionary(uniqueKeysWithValues: found.filter { $0.project == project }.map { ($0.run.id, $0.owner) })
            }
            // A live node's runs and runs waiting for tool outputs are nobody else's business.
            #expect(try await orphans(includeOwn: false) == [ofDead.id: dead, ofUnknown.id: "gone-\(project)", unowned.id: nil])
            #expect(try await orphans(includeOwn: true) == [ofDead.id: dead, mine.id: me, ofUnknown.id: "gone-\(project)", unowned.id: nil])

            // Adoption is a compare-and-set on the lease: the first node wins and bumps the epoch,
            // a second that saw the same lease finds it taken.
            let seen = try await store.orphanedRuns(withStatus: [.queued], node: me, timeout: 15, includeOwn: false)
            for id in [ofDead.id, unowned.id] {
                let orphan = try #require(seen.first { $0.run.id == id })
                let lease = try #require(try await store.adopt(orphan, node: me))
                #expect(lease.owner == me && lease.epoch == orphan.epoch + 1)
                #expect(try await store.adopt(orphan, node: live) == nil)
            }
            #expect(try await orphans(includeOwn: false) == [ofUnknown.id: "gone-\(project)"])

            // A run that moved on since it was seen (its own task recorded `requires_action`, with
            // no new lease) is not adopted on the old sight: resuming it would drop its open step.
            let sighted = try #require(try await store.orphanedRuns(withStatus: [.in_progress], node: me, timeout: 15, includeOwn: true)
                .first { $0.run.id == mine.id })
            try await store.write(project: project) { session in
                var moved = try #require(try await session.getForUpdate(Run.self, id: mine.id))
                moved.status = .requires_action
                try await session.update(moved)
            }
            #expect(try await store.adopt(sighted, node: me) == nil)

            // A node that stops cleanly is forgotten at once; one that beats again is alive again.
            try await store.removeNode(live)
            #expect(try await orphans(includeOwn: false)[ofLive.id] == .some(live))
            try await store.heartbeat(node: live)
            #expect(try await orphans(includeOwn: false)[ofLive.id] == nil)
        }
    }

    /// Fencing: once another node takes a run over, a write under the old lease changes nothing
    /// and says so, and the old owner can find which of its leases are gone.
    @Test(arguments: databases)
    func writesUnderALostLeaseChangeNothing(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            var run = Run(id: IDPrefix.run.makeID(), created_at: unixNow(), thread_id: "thread_x", assistant_id: "asst_x", model: "m", instructions: "")
            run.status = .in_progress
            let stale = try await store.write(project: project) { session in
                try await session.insert(run)
                return try await session.takeOver(run: run.id, for: "a-\(project)")
            }
            try await store.heartbeat(node: "a-\(project)", secondsAgo: 60)
            let orphan = try #require(try await store.orphanedRuns(withStatus: [.in_progress], node: "b-\(project)", timeout: 15, includeOwn: false)
                .first { $0.run.id == run.id })
            let current = try #require(try await store.adopt(orphan, node: "b-\(project)"))
            #expect(try await store.lostLeases([stale, current]) == [stale])

            let updates = RunTransitions(store: store, hub: RunEventHub())
            await #expect(throws: RunLease.Lost.self) {
                try await updates.update(stale) { run, _ in
                    run.status = .completed
                    return true
                }
            }
            await #expect(throws: RunLease.Lost.self) {
                try await updates.end(stale, as: .failed)
            }
            let message = Message(id: IDPrefix.message.makeID(), created_at: unixNow(), thread_id: "thread_x", role: "assistant", content: [])
            await #expect(throws: RunLease.Lost.self) {
                try await store.write(under: stale) { _ = try await $0.insert(message) }
            }
            #expect(try await store.read(project: project) { try await $0.get(Message.self, id: message.id) } == nil)
            #expect(try await store.read(project: project) { try await $0.get(Run.self, id: run.id) }?.status == .in_progress)
            // The new owner's writes go through.
            try await updates.end(current, as: .failed)
            #expect(try await store.read(project: project) { try await $0.get(Run.self, id: run.id) }?.status == .failed)
        }
    }

    /// A node with more runs in flight than one statement can bind: its leases are checked, and
    /// its orphans read, in batches; the runs its tasks drive are skipped before their bodies are read.
    @Test(arguments: databases)
    func leasesAndOrphansOfManyRunsAreReadInBatches(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            let (me, other) = ("me-\(project)", "other-\(project)")
            try await store.heartbeat(node: me)
            let runs = (0..<1_203).map { _ in
                var run = Run(id: IDPrefix.run.makeID(), created_at: unixNow(), thread_id: "thread_x", assistant_id: "asst_x", model: "m", instructions: "")
                run.status = .in_progress
                return run
            }
            let leases = try await store.write(project: project) { session in
                var leases: [RunLease] = []
                for run in runs {
                    try await session.insert(run)
                    leases.append(try await session.takeOver(run: run.id, for: me))
                }
                return leases
            }
            #expect(try await store.lostLeases(leases) == [])
            // One taken over in the third batch, one deleted in the first.
            let (takenOver, deleted) = (leases[1_100], leases[7])
            try await store.write(project: project) { session in
                _ = try await session.takeOver(run: takenOver.runID, for: other)
                try await session.delete(.run, id: deleted.runID)
            }
            #expect(try await store.lostLeases(leases) == [deleted, takenOver])

            let driven = Set(leases.map(\.runID)).subtracting([leases[3].runID, leases[1_202].runID])
            let orphans = try await store.orphanedRuns(withStatus: [.in_progress], node: me, timeout: 15, includeOwn: true,
                                                       skipping: { driven.contains($0) })
            #expect(orphans.filter { $0.project == project }.map(\.run.id) == [leases[3].runID, leases[1_202].runID])
            #expect(orphans.first { $0.run.id == leases[3].runID }?.run.status == .in_progress)
        }
    }

    /// The engine's look for expired runs, every second, finds the expired ones through the
    /// runs_active_expiry index (status, then `expires_at`): on SQLite, a range of that index,
    /// not a read of every active run's JSON.
    @Test(arguments: databases)
    func expiredRunsAreFoundThroughTheExpiryIndex(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            let node = "me-\(project)"
            try await store.heartbeat(node: node)
            func run(expiresIn seconds: Int) -> Run {
                var run = Run(id: IDPrefix.run.makeID(), created_at: unixNow(), thread_id: "thread_x", assistant_id: "asst_x", model: "m", instructions: "")
                run.status = .in_progress
                run.expires_at = unixNow() + seconds
                return run
            }
            let (expired, live) = (run(expiresIn: -5), run(expiresIn: 600))
            try await store.write(project: project) { session in
                for run in [expired, live] {
                    try await session.insert(run)
                    _ = try await session.takeOver(run: run.id, for: node)
                }
            }
            let found = try await store.runsExpired(node: node, timeout: 15).filter { $0.project == project }
            #expect(found.map(\.run.id) == [expired.id])
            let condition = store.expiredRuns(node: node, timeout: 15)
            if store.driver.dialect == .sqlite {
                let plan = try await store.driver.withReader { database in
                    try await database.raw("EXPLAIN QUERY PLAN SELECT body FROM runs WHERE \(condition)").all()
                        .map { try $0.decode(column: "detail", as: String.self) }
                }
                #expect(plan.contains { $0.contains("USING INDEX runs_active_expiry (status=? AND <expr><?)") }, "\(plan)")
            } else {
                let indexes = try await store.driver.withReader { database in
                    try await database.raw("SELECT indexname FROM pg_indexes WHERE tablename = 'runs'").all()
                        .map { try $0.decode(column: "indexname", as: String.self) }
                }
                #expect(indexes.contains("runs_active_expiry") && !indexes.contains("runs_status"))
            }
        }
    }

    /// The heartbeat's check of the leases a node holds looks each run up by id (SQLite's plan):
    /// it scanned the whole runs table once per batch of 500 before.
    @Test func leasesAreCheckedThroughTheIDIndex() async throws {
        try await withStore(TestSupport.databaseURL("sqlite")) { store async throws in
            let leases = (0..<3).map { RunLease(runID: IDPrefix.run.makeID(), project: "p", owner: "me", epoch: $0) }
            let plan = try await store.driver.withReader { database in
                try await database.raw("EXPLAIN QUERY PLAN \(ObjectStore.leasesHolding(leases))").all()
                    .map { try $0.decode(column: "detail", as: String.self) }
            }
            #expect(plan.contains { $0.hasPrefix("SEARCH runs USING INDEX") && $0.contains("(id=?)") }, "\(plan)")
            #expect(!plan.contains { $0.hasPrefix("SCAN runs") }, "\(plan)")
        }
    }

    /// A cancel recorded on one node reaches the others at once: the transaction's NOTIFY is
    /// heard by every listener when it commits (PostgreSQL; SQLite has one process and polls).
    @Test(.timeLimit(.minutes(1))) func cancelSignalsReachListenersOnCommit() async throws {
        guard TestSupport.postgresURL != nil else { return }
        try await withStore(TestSupport.databaseURL("postgres")) { store async throws in
            let (heard, continuation) = AsyncStream.makeStream(of: String.self)
            let listener = Task {
                await store.listenForCancels(logger: TestSupport.logger) { continuation.yield($0) }
            }
            defer { listener.cancel() }
            let runID = IDPrefix.run.makeID()
            // Until the listener is in place a signal may be missed: send until one is heard.
            let sender = Task {
                while !Task.isCancelled {
                    try await store.write(project: "p") { try await store.signalCancel(of: runID, session: $0) }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            defer { sender.cancel() }
            var received: String?
            for await id in heard {
                received = id
                break
            }
            #expect(received == runID)
        }
    }

    @Test func sqliteKeepsWritesAcrossReopen() async throws {
        let url = TestSupport.databaseURL("sqlite")
        let project = TestSupport.uniqueProject()
        let assistant = Assistant(id: IDPrefix.assistant.makeID(), created_at: unixNow(), model: "m")
        try await withStore(url) { store async throws in
            try await store.write(project: project) { _ = try await $0.insert(assistant) }
        }
        try await withStore(url) { store async throws in
            #expect(try await store.read(project: project) { try await $0.get(Assistant.self, id: assistant.id) }?.id == assistant.id)
        }
    }

    @Test func unknownDatabaseURLIsRejected() async throws {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ObjectStore.open(url: "mysql://x", logger: TestSupport.logger)
        }
    }

    /// A read-modify-write that finds the JSON it last wrote uses its own copy; one that finds a
    /// change (another writer's) decodes the row.
    @Test(arguments: TestSupport.databases)
    func getForUpdateUsesTheKnownCopyOnlyWhileTheRowIsUnchanged(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            var run = Run(id: IDPrefix.run.makeID(), created_at: unixNow(), thread_id: "thread_x", assistant_id: "asst_x", model: "m", instructions: "")
            let body = try await store.write(project: project) { try await $0.insert(run) }
            // A marker only the known copy carries: it comes back while the row is unchanged.
            var marked = run
            marked.model = "known-copy"
            let same = try await store.write(project: project) {
                try await $0.getForUpdate(Run.self, id: run.id, known: Stored(marked, body: body))
            }
            #expect(same?.model == "known-copy")
            run.metadata = ["changed": "yes"]
            try await store.write(project: project) { try await $0.update(run) }
            let changed = try await store.write(project: project) {
                try await $0.getForUpdate(Run.self, id: run.id, known: Stored(marked, body: body))
            }
            #expect(changed?.model == "m")
            #expect(changed?.metadata == ["changed": "yes"])
            let stored = try await store.read(project: project) { try await $0.getStored(Run.self, id: run.id) }
            let row = try await store.read(project: project) { try await $0.body(.run, id: run.id) }
            #expect(stored?.body == row)
            #expect(stored?.object.metadata == ["changed": "yes"])
        }
    }

    /// A run handed to the engine as its creator stored it may have been ended since: recording
    /// its start then says so instead of storing anything more of it.
    @Test(arguments: TestSupport.databases)
    func recordingTheStartOfAnEndedRunThrows(database: String) async throws {
        try await withStore(TestSupport.databaseURL(database)) { store async throws in
            let project = TestSupport.uniqueProject()
            var run = Run(id: IDPrefix.run.makeID(), created_at: unixNow(), thread_id: "thread_x", assistant_id: "asst_x", model: "m", instructions: "")
            let lease = try await store.write(project: project) { session in
                try await session.insert(run)
                return try await session.takeOver(run: run.id, for: "me")
            }
            let updates = RunTransitions(store: store, hub: RunEventHub())
            try await RunStart(lease: lease, startedAt: 5, updates: updates, written: false).ensureWritten()
            let started = try await store.read(project: project) { try await $0.get(Run.self, id: run.id) }
            #expect(started?.status == .in_progress)
            #expect(started?.started_at == 5)

            run.id = IDPrefix.run.makeID()
            run.status = .cancelled
            let endedLease = try await store.write(project: project) { session in
                try await session.insert(run)
                return try await session.takeOver(run: run.id, for: "me")
            }
            await #expect(throws: RunStart.RunEnded.self) {
                try await RunStart(lease: endedLease, startedAt: 5, updates: updates, written: false).ensureWritten()
            }
            let ended = try await store.read(project: project) { try await $0.get(Run.self, id: run.id) }
            #expect(ended?.status == .cancelled)
            #expect(ended?.started_at == nil)
        }
    }
}

/// Group commit: concurrent transactions share commits, and one that fails leaves the others whole.
@Suite struct GroupCommitTests {
    /// The writer's thread runs below the event loops, so that on saturated cores open streams go first.
    @Test func transactionsRunBelowTheProcesssPriority() async throws {
        let store = try await ObjectStore.open(url: TestSupport.databaseURL("sqlite"), logger: TestSupport.logger)
        let expected = min(ThreadExecutor.currentThreadNiceness() + GroupCommit.writerNiceness, 19)
        let niceness = try await store.write(project: TestSupport.uniqueProject()) { _ in ThreadExecutor.currentThreadNiceness() }
        #expect(niceness == expected)
        await store.shutdown()
    }

    @Test func concurrentWritesAllLandAndFailuresStayAlone() async throws {
        struct Refused: Error {}
        let store = try await ObjectStore.open(url: TestSupport.databaseURL("sqlite"), logger: TestSupport.logger)
        let project = TestSupport.uniqueProject()
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    do {
                        try await store.write(project: project) { session in
                            try await session.insert(Assistant(id: "asst_gc\(index)", created_at: 1, model: "m"))
                            if index % 10 == 0 { throw Refused() }
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 180)
        let page = try await store.read(project: project) { try await $0.list(.assistant, page: PageRequest(limit: 100)) }
        #expect(page.ids.count == 100 && page.hasMore)
        for index in [0, 10, 190] {
            #expect(try await store.read(project: project) { try await $0.exists(.assistant, id: "asst_gc\(index)") } == false)
        }
        #expect(try await store.read(project: project) { try await $0.exists(.assistant, id: "asst_gc11") })
        await store.shutdown()
    }

    /// Writes one after another are groups of one (no savepoint): one that throws leaves none of
    /// its writes and its caller hears its own error; the next one writes as usual.
    @Test func aLoneTransactionThatThrowsWritesNothing() async throws {
        struct Refused: Error {}
        let store = try await ObjectStore.open(url: TestSupport.databaseURL("sqlite"), logger: TestSupport.logger)
        let project = TestSupport.uniqueProject()
        await #expect(throws: Refused.self) {
            try await store.write(project: project) { session in
                try await session.insert(Assistant(id: "asst_lone1", created_at: 1, model: "m"))
                try await session.insert(Assistant(id: "asst_lone2", created_at: 1, model: "m"))
                throw Refused()
            }
        }
        try await store.write(project: project) { try await $0.insert(Assistant(id: "asst_lone3", created_at: 1, model: "m")) }
        for (id, stored) in [("asst_lone1", false), ("asst_lone2", false), ("asst_lone3", true)] {
            #expect(try await store.read(project: project) { try await $0.exists(.assistant, id: id) } == stored)
        }
        await store.shutdown()
    }

    /// A failing transaction in a group never makes the others run twice.
    @Test func everyBodyRunsExactlyOnce() async throws {
        struct Refused: Error {}
        let store = try await ObjectStore.open(url: TestSupport.databaseURL("sqlite"), logger: TestSupport.logger)
        let project = TestSupport.uniqueProject()
        let runs = NIOLockedValueBox([Int: Int]())
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask {
                    _ = try? await store.write(project: project) { session in
                        runs.withLockedValue { $0[index, default: 0] += 1 }
                        try await session.insert(Assistant(id: "asst_once\(index)", created_at: 1, model: "m"))
                        if index % 7 == 0 { throw Refused() }
                    }
                }
            }
        }
        #expect(runs.withLockedValue { $0.count } == 100)
        #expect(runs.withLockedValue { $0.values.allSatisfy { $0 == 1 } }, "a body ran twice")
        let page = try await store.read(project: project) { try await $0.list(.assistant, page: PageRequest(limit: 100)) }
        #expect(page.ids.count == 100 - 15)
        await store.shutdown()
    }
}
