import Foundation
import Logging
import ServiceLifecycle
import SQLKit

/// The deletions several callers share (the HTTP handlers and the housekeeping sweep), as writes
/// inside one store transaction. What lies outside the database (file bytes, sandbox sessions)
/// is for the caller to remove once the transaction has committed.
enum Removal {
    /// Deletes a file and detaches it from every vector store; false if it was not there.
    static func file(_ id: String, session: StoreSession) async throws -> Bool {
        guard try await session.delete(.file, id: id) else { return false }
        try await session.detachFileEverywhere(id)
        return true
    }

    /// Deletes a vector store with its file entries, batches and chunks; false if it was not there.
    static func vectorStore(_ id: String, session: StoreSession) async throws -> Bool {
        guard try await session.delete(.vectorStore, id: id) else { return false }
        try await emptyVectorStore(id, session: session)
        return true
    }

    /// Removes what a vector store holds (file entries, batches, chunks), keeping the store itself.
    static func emptyVectorStore(_ id: String, session: StoreSession) async throws {
        try await session.deleteChildren(.vectorStoreFile, parentID: id)
        try await session.deleteChildren(.fileBatch, parentID: id)
        try await session.deleteChunks(vectorStoreID: id)
    }

    /// Deletes a thread with its messages, runs and run steps, and the vector store made for it
    /// (for its messages' file_search attachments); false if it was not there.
    static func thread(_ id: String, session: StoreSession) async throws -> Bool {
        let thread = try await session.get(AssistantThread.self, id: id)
        guard try await session.delete(.thread, id: id) else { return false }
        try await session.deleteRunSteps(ofThread: id)
        try await session.deleteChildren(.run, parentID: id)
        try await session.deleteChildren(.message, parentID: id)
        let storeIDs = (thread?.tool_resources?["file_search"]?["vector_store_ids"]?.arrayValue ?? []).compactMap(\.stringValue)
        for storeID in storeIDs {
            // Its own store is the one made under its name; a store the caller attached is left alone.
            if let store = try await session.get(VectorStore.self, id: storeID), store.name == VectorStoreLibrary.threadStoreName(id) {
                _ = try await vectorStore(storeID, session: session)
            }
        }
        return true
    }
}

/// The background sweep (every `ASSISTANTS_SWEEP_SECONDS`): deletes files past their `expires_at`,
/// empties vector stores past theirs (they stay, with status `expired`, as the API describes),
/// and closes the code_interpreter sessions of threads deleted meanwhile (by any server).
final class HousekeepingService: Service, Sendable {
    let store: ObjectStore
    let blobs: any BlobStore
    let codeInterpreter: CodeInterpreterService
    let interval: Duration
    let logger: Logger

    init(store: ObjectStore, blobs: any BlobStore, codeInterpreter: CodeInterpreterService, interval: Duration, logger: Logger) {
        self.store = store
        self.blobs = blobs
        self.codeInterpreter = codeInterpreter
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.sweep(now: unixNow())
                } catch {
                    self.logger.warning("housekeeping sweep failed: \(error)")
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// One pass.
    func sweep(now: Int) async throws {
        for (project, id) in try await store.expired(.file, at: now) {
            let deleted = try await store.write(project: project) { try await Removal.file(id, session: $0) }
            if deleted {
                try await blobs.remove(fileID: id)
                logger.info("housekeeping: deleted expired file \(id)")
            }
        }
        for (project, id) in try await store.expiredVectorStoresHoldingFiles(at: now) {
            try await store.write(project: project) { session in
                // Re-checked inside the transaction: a use since the query may have moved expires_at.
                guard let vectorStore = try await session.get(VectorStore.self, id: id),
                      let expiresAt = vectorStore.expires_at, expiresAt <= now else { return }
                try await Removal.emptyVectorStore(id, session: session)
            }
            logger.info("housekeeping: emptied expired vector store \(id)")
        }
        try await blobs.tidy()
        for owner in codeInterpreter.sessionOwners() {
            let exists = try await store.read(project: owner.project) { try await $0.exists(.thread, id: owner.threadID) }
            if !exists {
                await codeInterpreter.closeSession(project: owner.project, threadID: owner.threadID)
                logger.info("housekeeping: closed the code_interpreter session of deleted thread \(owner.threadID)")
            }
        }
    }
}

extension ObjectStore {
    /// `(project, id)` of every object of `kind` whose stored `expires_at` is `now` or earlier.
    func expired(_ kind: ObjectKind, at now: Int) async throws -> [(project: String, id: String)] {
        try await projectsAndIDs("SELECT project, id FROM \(unsafeRaw: kind.rawValue) WHERE \(expiresAt) <= \(bind: now) ORDER BY seq")
    }

    /// Expired vector stores that still hold files (the ones a sweep has emptied are not listed again).
    func expiredVectorStoresHoldingFiles(at now: Int) async throws -> [(project: String, id: String)] {
        try await projectsAndIDs("""
            SELECT project, id FROM vector_stores WHERE \(expiresAt) <= \(bind: now)
            AND EXISTS (SELECT 1 FROM vector_store_files f WHERE f.parent_id = vector_stores.id AND f.project = vector_stores.project)
            ORDER BY seq
            """)
    }

    /// The `(project, id)` rows a query selects.
    private func projectsAndIDs(_ query: SQLQueryString) async throws -> [(project: String, id: String)] {
        try await driver.withReader { database in
            try await database.raw(query).all().map {
                (try $0.decode(column: "project", as: String.self), try $0.decode(column: "id", as: String.self))
            }
        }
    }
}
