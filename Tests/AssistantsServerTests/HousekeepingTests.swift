import Foundation
import NIOCore
import Testing
@testable import AssistantsServer

/// The housekeeping sweep and the shared deletions, against SQLite (and PostgreSQL when configured).
@Suite struct HousekeepingTests {
    @Test(arguments: TestSupport.databases)
    func sweepDeletesExpiredFilesAndEmptiesExpiredVectorStores(database: String) async throws {
        let directory = TestSupport.temporaryDirectory()
        let store = try await ObjectStore.open(url: TestSupport.databaseURL(database), logger: TestSupport.logger)
        defer { Task { await store.shutdown() } }
        let blobs = try BlobStoreKind.defaultKind(databaseURL: TestSupport.databaseURL(database)).make(driver: store.driver, dataDirectory: directory)
        let project = TestSupport.uniqueProject()
        let now = unixNow()

        var expired = OpenAIFile(id: IDPrefix.file.makeID(), bytes: 3, created_at: now - 7200, filename: "old.txt", purpose: "assistants")
        expired.expires_at = now - 1
        var kept = OpenAIFile(id: IDPrefix.file.makeID(), bytes: 3, created_at: now, filename: "new.txt", purpose: "assistants")
        kept.expires_at = now + 3600
        let forever = OpenAIFile(id: IDPrefix.file.makeID(), bytes: 3, created_at: now, filename: "keep.txt", purpose: "assistants")
        for file in [expired, kept, forever] { try await blobs.put(fileID: file.id, bytes: ByteBuffer(string: "abc")) }

        var oldStore = VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: now - 9 * 86_400)
        oldStore.expires_after = .init(anchor: "last_active_at", days: 1)
        oldStore.expires_at = now - 86_400
        var liveStore = VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: now)
        liveStore.expires_after = .init(anchor: "last_active_at", days: 1)
        liveStore.expires_at = now + 86_400
        try await store.write(project: project) { session in
            for file in [expired, kept, forever] { try await session.insert(file) }
            for vectorStore in [oldStore, liveStore] {
                try await session.insert(vectorStore)
                var entry = VectorStoreFile(id: forever.id, created_at: now, vector_store_id: vectorStore.id, chunking_strategy: .auto)
                entry.status = "completed"
                try await session.insert(entry)
            }
        }

        let service = HousekeepingService(
            store: store, blobs: blobs,
            codeInterpreter: CodeInterpreterService(dataDirectory: directory, settings: .init(), logger: TestSupport.logger),
            interval: .seconds(60), logger: TestSupport.logger)
        try await service.sweep(now: unixNow())

        try await store.read(project: project) { session async throws in
            #expect(try await session.get(OpenAIFile.self, id: expired.id) == nil)
            #expect(try await session.get(OpenAIFile.self, id: kept.id) != nil)
            #expect(try await session.get(OpenAIFile.self, id: forever.id) != nil)
            // The expired store stays, as `expired` and empty; the live one keeps its file.
            let old = try await VectorStoreLibrary.current(session.require(VectorStore.self, id: oldStore.id), session: session)
            #expect(old.status == "expired")
            #expect(old.file_counts.total == 0)
            let live = try await VectorStoreLibrary.current(session.require(VectorStore.self, id: liveStore.id), session: session)
            #expect(live.status == "completed")
            #expect(live.file_counts.total == 1)
        }
        #expect(try await blobs.read(fileID: expired.id) == nil)
        #expect(try await blobs.read(fileID: kept.id)?.size == 3)

        // Use does not bring an expired store back.
        try await store.write(project: project) { try await VectorStoreLibrary.touch([oldStore.id], session: $0) }
        let touched = try await store.read(project: project) { try await $0.require(VectorStore.self, id: oldStore.id) }
        #expect(touched.expires_at == oldStore.expires_at)
    }

    @Test(arguments: TestSupport.databases)
    func deletingAThreadRemovesItsOwnVectorStoreOnly(database: String) async throws {
        let store = try await ObjectStore.open(url: TestSupport.databaseURL(database), logger: TestSupport.logger)
        defer { Task { await store.shutdown() } }
        let project = TestSupport.uniqueProject()
        var thread = AssistantThread(id: IDPrefix.thread.makeID(), created_at: unixNow())
        var own = VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: unixNow())
        own.name = VectorStoreLibrary.threadStoreName(thread.id)
        var shared = VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: unixNow())
        shared.name = "team docs"
        thread.tool_resources = ["file_search": ["vector_store_ids": [.string(own.id), .string(shared.id)]]]
        try await store.write(project: project) { session in
            try await session.insert(own)
            try await session.insert(shared)
            try await session.insert(thread)
        }
        let deleted = try await store.write(project: project) { try await Removal.thread(thread.id, session: $0) }
        #expect(deleted)
        try await store.read(project: project) { session async throws in
            #expect(try await session.get(AssistantThread.self, id: thread.id) == nil)
            #expect(try await session.get(VectorStore.self, id: own.id) == nil)
            #expect(try await session.get(VectorStore.self, id: shared.id) != nil)
        }
    }

    @Test func removeTreeRemovesEverythingAndFollowsNoLink() throws {
        let root = TestSupport.temporaryDirectory()
        let outside = TestSupport.temporaryDirectory()
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/session/a/b", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/session/a/b/deep.txt"))
        try Data("y".utf8).write(to: URL(fileURLWithPath: root + "/session/top.txt"))
        try Data("keep".utf8).write(to: URL(fileURLWithPath: outside + "/host.txt"))
        try manager.createSymbolicLink(atPath: root + "/session/link", withDestinationPath: outside)
        try manager.createSymbolicLink(atPath: root + "/session/a/filelink", withDestinationPath: outside + "/host.txt")

        #expect(SandboxFolder.removeTree(named: "session", in: root))
        #expect(!manager.fileExists(atPath: root + "/session"))
        #expect(manager.fileExists(atPath: outside + "/host.txt"))
        #expect(SandboxFolder.removeTree(named: "session", in: root), "an absent folder is already removed")
        #expect(!SandboxFolder.removeTree(named: "..", in: root))
    }
}
