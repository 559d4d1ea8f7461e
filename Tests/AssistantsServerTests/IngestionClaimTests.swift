import Foundation
import Testing
@testable import AssistantsServer

/// Ingestion jobs claimed by nodes through the database: each in-progress file goes to one
/// claimer; a claim of a dead node is taken over once it is older than the timeout, a claim of a
/// live node or a fresh one is not; released claims are taken again. On the shared PostgreSQL
/// database other tests' rows may be claimed along the way: only this test's rows are checked.
/// Serialized: each test claims whatever it may, which must not be the other's rows.
@Suite(.serialized) struct IngestionClaimTests {
    static let timeout = 5

    /// Claims until there is nothing left to claim; this project's claims, by file id.
    static func claimAll(_ store: ObjectStore, node: String, project: String) async throws -> [String] {
        var mine: [String] = []
        while let claim = try await store.claimIngestion(node: node, timeout: timeout, embeddingModel: "") {
            if claim.project == project { mine.append(claim.fileID) }
        }
        return mine
    }

    /// A store on `database`, a fresh project, a tag for node names, and a vector store to insert.
    static func setUp(_ database: String) async throws -> (ObjectStore, String, Substring, VectorStore) {
        (try await ObjectStore.open(url: TestSupport.databaseURL(database), logger: TestSupport.logger), TestSupport.uniqueProject(),
         UUID().uuidString.prefix(8), VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: unixNow()))
    }

    @Test(arguments: TestSupport.databases)
    func claimsAreExclusiveAndDeadNodesClaimsAreTakenOver(database: String) async throws {
        let (store, project, tag, vectorStore) = try await Self.setUp(database)
        defer { Task { await store.shutdown() } }
        let (nodeA, nodeB, live) = ("claims-a-\(tag)", "claims-b-\(tag)", "claims-live-\(tag)")
        let fileIDs = (0..<6).map { _ in IDPrefix.file.makeID() }
        try await store.write(project: project) { session in
            try await session.insert(vectorStore)
            for (index, fileID) in fileIDs.enumerated() {
                var entry = VectorStoreFile(id: fileID, created_at: unixNow(), vector_store_id: vectorStore.id, chunking_strategy: .auto)
                if index == 5 { entry.status = "completed" }  // not a job
                try await session.insert(entry)
            }
        }

        // Concurrent claimers on two nodes: every job goes to exactly one of them.
        async let first = Self.claimAll(store, node: nodeA, project: project)
        async let second = Self.claimAll(store, node: nodeB, project: project)
        let (a, b) = try await (first, second)
        #expect((a + b).sorted() == Array(fileIDs.prefix(5)).sorted(), "a: \(a), b: \(b)")
        #expect(Set(a).isDisjoint(with: b))

        // Fresh claims are not taken over, even from nodes that never beat.
        #expect(try await Self.claimAll(store, node: live, project: project).isEmpty)

        // A's claims age past the timeout; A has stopped beating while B beats: A's are taken over, B's are not.
        try await store.heartbeat(node: nodeA, secondsAgo: 60)
        try await store.heartbeat(node: nodeB)
        try await store.driver.withTransaction { database in
            try await database.raw("""
                UPDATE vector_store_files SET claimed_at = claimed_at - 60 WHERE project = \(bind: project) AND claimed_by IS NOT NULL
                """).run()
        }
        let takenOver = try await Self.claimAll(store, node: live, project: project)
        #expect(takenOver.sorted() == a.sorted())

        // A stalled node whose claim was taken over holds it no more; the new claimer does.
        if let fileID = a.first {
            let rowID = VectorStoreFile.rowID(vectorStoreID: vectorStore.id, fileID: fileID)
            try await store.read(project: project) { session async throws in
                #expect(try await !session.holdsIngestionClaim(rowID: rowID, node: nodeA))
                #expect(try await session.holdsIngestionClaim(rowID: rowID, node: live))
            }
        }

        // B shuts down cleanly: its claims are given back and taken at once (on SQLite, the
        // only node's database, every claim is given back).
        try await store.releaseIngestionClaims(node: nodeB)
        let again = try await Self.claimAll(store, node: nodeA, project: project)
        #expect(again.sorted() == (database == "postgres" ? b : Array(fileIDs.prefix(5))).sorted())
        try await store.removeNode(nodeA)
        try await store.removeNode(nodeB)
    }

    @Test func jobSignalWakesAWaiterOrTimesOut() async throws {
        let signal = JobSignal()
        let clock = ContinuousClock()
        // Nobody signals: the wait ends at its timeout.
        let idle = await clock.measure { await signal.wait(timeout: .milliseconds(100)) }
        #expect(idle >= .milliseconds(90))
        // A signal sent before the wait is kept for it.
        signal.signal()
        let kept = await clock.measure { await signal.wait(timeout: .seconds(30)) }
        #expect(kept < .seconds(5))
        // A signal wakes a waiting worker.
        async let woken: Duration = clock.measure { await signal.wait(timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        signal.signal()
        #expect(await woken < .seconds(5))
    }

    /// A node embedding with another model (or none) leaves a job alone: only a node configured
    /// like the one that queued it indexes it (it failed before: such a node took the job and
    /// stored its chunks without vectors).
    @Test(arguments: TestSupport.databases)
    func onlyNodesWithTheJobsEmbeddingModelClaimIt(database: String) async throws {
        let (store, project, tag, vectorStore) = try await Self.setUp(database)
        defer { Task { await store.shutdown() } }
        let entry = VectorStoreFile(id: IDPrefix.file.makeID(), created_at: unixNow(), vector_store_id: vectorStore.id, chunking_strategy: .auto)
        try await store.write(project: project) { session in
            try await session.insert(vectorStore)
            try await session.insert(entry)
            try await session.setIngestionEmbedding(rowID: VectorStoreFile.rowID(vectorStoreID: vectorStore.id, fileID: entry.id), model: "model-\(tag)")
        }
        func claims(_ model: String) async throws -> [String] {
            var mine: [String] = []
            while let claim = try await store.claimIngestion(node: "node-\(tag)", timeout: Self.timeout, embeddingModel: model) {
                if claim.project == project { mine.append(claim.fileID) }
            }
            return mine
        }
        #expect(try await claims("").isEmpty)
        #expect(try await claims("other-\(tag)").isEmpty)
        #expect(try await claims("model-\(tag)") == [entry.id])
    }
}
