import Foundation
import Testing
@testable import AssistantsServer

/// `RunEngine.recover()` and this node's own runs: a run a request has committed but not yet
/// handed to a task is not taken from that task.
@Suite struct RunRecoveryTests {
    /// An engine on `store` whose runs answer with the scripted model.
    static func engine(store: ObjectStore, nodeID: String) throws -> RunEngine {
        let directory = TestSupport.temporaryDirectory()
        let blobs = try FileBlobStore(dataDirectory: directory)
        let hub = RunEventHub()
        let executor = RunExecutor(
            store: store, client: ScriptedChatModel(), router: ModelRouter(defaultURL: "http://scripted.invalid/v1", defaultAPIKey: nil), hub: hub,
            fileSearch: FileSearchTool(search: FileSearch(store: store, embedder: nil, vectors: VectorIndexCache(budgetBytes: 1 << 20))),
            codeInterpreter: CodeInterpreterTool(
                service: CodeInterpreterService(dataDirectory: directory, settings: .init(), logger: TestSupport.logger), store: store, blobs: blobs),
            blobs: blobs, logger: TestSupport.logger)
        return RunEngine(store: store, executor: executor, hub: hub, logger: TestSupport.logger, nodeID: nodeID)
    }

    /// On a database of its own: `recover` adopts every orphan it finds, other tests' included.
    @Test func ownRunWithoutATaskIsAdoptedOnlyWhenTwoBeatsSeeIt() async throws {
        let database = "sqlite://\(TestSupport.temporaryDirectory())/recovery.sqlite"
        let store = try await ObjectStore.open(url: database, logger: TestSupport.logger)
        defer { Task { await store.shutdown() } }
        let project = TestSupport.uniqueProject()
        let node = "me-\(project)"
        try await store.heartbeat(node: node)
        let engine = try Self.engine(store: store, nodeID: node)
        func queuedRun() async throws -> RunLease {
            let run = Run(id: IDPrefix.run.makeID(), created_at: unixNow(), thread_id: IDPrefix.thread.makeID(),
                          assistant_id: "asst_x", model: "m", instructions: "")
            return try await store.write(project: project) { session in
                try await session.insert(run)
                return try await session.takeOver(run: run.id, for: node)
            }
        }
        func epoch(_ lease: RunLease) async throws -> Int? {
            try await store.orphanedRuns(withStatus: Run.Status.active, node: node, timeout: 15, includeOwn: true)
                .first { $0.run.id == lease.runID }?.epoch
        }

        // Committed by a request whose task is not scheduled yet: one beat leaves it alone.
        let committed = try await queuedRun()
        try await engine.recover()
        #expect(try await epoch(committed) == committed.epoch)
        // Still without a task at the next beat, with the same lease: adopted (its epoch bumped) and run.
        try await engine.recover()
        #expect(try await epoch(committed) != committed.epoch)

        // At start-up, this node's runs of its previous life are adopted at once.
        let leftOver = try await queuedRun()
        try await engine.recover(startup: true)
        #expect(try await epoch(leftOver) != leftOver.epoch)
        await engine.drain()
    }
}
