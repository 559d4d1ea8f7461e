import Foundation

/// The vector-store operations several endpoints share: attaching files (which queues their
/// ingestion), and computing a store's or batch's live `status`, `file_counts` and `usage_bytes`.
struct VectorStoreLibrary {
    let ingestion: IngestionService

    /// A file to attach: its id, attributes and chunking.
    struct Attachment {
        var fileID: String
        var attributes: [String: JSONValue]
        var chunking: ChunkingStrategy
    }

    /// Inserts `in_progress` entries for files not yet in the store; returns the new ones.
    /// Ingestion is queued by `startIngestion` once the transaction has committed.
    func attach(_ attachments: [Attachment], to vectorStoreID: String, batchID: String? = nil,
                session: StoreSession, fileParam: (Int) -> String) async throws -> [VectorStoreFile] {
        var added: [VectorStoreFile] = []
        for (index, attachment) in attachments.enumerated() {
            guard try await session.exists(.file, id: attachment.fileID) else {
                throw DomainError.invalidRequest("No file found with id '\(attachment.fileID)'.", param: fileParam(index))
            }
            let rowID = VectorStoreFile.rowID(vectorStoreID: vectorStoreID, fileID: attachment.fileID)
            if var existing = try await session.get(VectorStoreFile.self, id: rowID) {
                // Already in the store: a batch that names it again counts it as its own.
                if let batchID {
                    existing.batchID = batchID
                    try await session.update(existing)
                }
                continue
            }
            var entry = VectorStoreFile(id: attachment.fileID, created_at: unixNow(), vector_store_id: vectorStoreID,
                                        chunking_strategy: attachment.chunking)
            entry.attributes = attachment.attributes
            entry.batchID = batchID
            try await session.insert(entry)
            try await session.setIngestionEmbedding(rowID: rowID, model: ingestion.embeddingModel)
            added.append(entry)
        }
        return added
    }

    func startIngestion(_ entries: [VectorStoreFile], project: String) {
        for entry in entries {
            ingestion.enqueue(project: project, vectorStoreID: entry.vector_store_id, fileID: entry.id)
        }
    }

    /// The store as it is now: counts, bytes and status from its files; expiry from its activity.
    static func current(_ store: VectorStore, session: StoreSession) async throws -> VectorStore {
        var store = store
        let (counts, bytes) = try await session.fileCounts(vectorStoreID: store.id)
        store.file_counts = counts
        store.usage_bytes = bytes
        if let expiresAt = store.expires_at, expiresAt <= unixNow() {
            store.status = "expired"
        } else {
            store.status = counts.in_progress > 0 ? "in_progress" : "completed"
        }
        return store
    }

    static func current(_ batch: VectorStoreFileBatch, session: StoreSession) async throws -> VectorStoreFileBatch {
        var batch = batch
        batch.file_counts = try await session.fileCounts(vectorStoreID: batch.vector_store_id, batchID: batch.id).counts
        if batch.status != "cancelled" {
            batch.status = batch.file_counts.in_progress > 0 ? "in_progress" : "completed"
        }
        return batch
    }

    /// The name of the vector store made for a thread's attachments (its deletion removes it).
    static func threadStoreName(_ threadID: String) -> String { "Vector store for \(threadID)" }

    /// Records use of the stores (a search or a run): `last_active_at`, and `expires_at` with it.
    static func touch(_ ids: [String], session: StoreSession) async throws {
        let now = unixNow()
        for id in ids {
            guard var store = try await session.get(VectorStore.self, id: id) else { continue }
            // An expired store stays expired (the housekeeping sweep has emptied it, or will).
            if let expiresAt = store.expires_at, expiresAt <= now { continue }
            store.last_active_at = now
            if let after = store.expires_after { store.expires_at = now + after.days * 86_400 }
            try await session.update(store)
        }
    }
}

extension StoreSession {
    /// Removes a deleted file from every vector store, with its chunks.
    func detachFileEverywhere(_ fileID: String) async throws {
        try await database.raw("DELETE FROM vector_store_files WHERE project = \(bind: project) AND id LIKE \(bind: "%/" + fileID)").run()
        try await database.raw("DELETE FROM chunks WHERE project = \(bind: project) AND file_id = \(bind: fileID)").run()
    }
}
