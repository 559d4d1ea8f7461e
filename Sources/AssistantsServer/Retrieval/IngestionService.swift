import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Tracing

/// Ingests vector-store files in the background: extract the text, chunk it, index it. Durable:
/// a file stays `in_progress` in the database until its chunks are committed with it `completed`,
/// so at start every file still in progress is ingested again from scratch.
public final class IngestionService: Service, Sendable {
    struct Job: Sendable {
        var project: String
        var vectorStoreID: String
        var fileID: String
        /// The trace context of the request that queued it (its span becomes the ingestion's parent).
        var context: ServiceContext?
    }

    let store: ObjectStore
    let blobs: FileBlobs
    let embedder: Embedder?
    let logger: Logger
    let workers: Int
    private let queue: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation

    init(store: ObjectStore, blobs: FileBlobs, embedder: Embedder?, logger: Logger, workers: Int = 2) {
        self.store = store
        self.blobs = blobs
        self.embedder = embedder
        self.logger = logger
        self.workers = workers
        (queue, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    public func enqueue(project: String, vectorStoreID: String, fileID: String) {
        AppMetrics.ingestionBacklog.increment()
        continuation.yield(Job(project: project, vectorStoreID: vectorStoreID, fileID: fileID, context: ServiceContext.current))
    }

    public func run() async throws {
        do {
            try await recover()
        } catch {
            logger.error("could not resume file ingestion", metadata: ["error": "\(error)"])
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<self.workers {
                    group.addTask {
                        for await job in self.queue {
                            if Task.isCancelled { break }
                            await withSpan("file ingestion", context: job.context ?? .topLevel, ofKind: .internal) { span in
                                span.attributes["assistants.file_id"] = job.fileID
                                span.attributes["assistants.vector_store_id"] = job.vectorStoreID
                                await self.ingest(job)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Files a dead process left in progress start over.
    func recover() async throws {
        let rows = try await store.driver.withReader { database in
            try await database.raw("SELECT project, body FROM vector_store_files WHERE status = 'in_progress' ORDER BY seq").all()
        }
        for row in rows {
            let project = try row.decode(column: "project", as: String.self)
            let file = try JSONCoding.decode(VectorStoreFile.self, from: row.decode(column: "body", as: String.self))
            enqueue(project: project, vectorStoreID: file.vector_store_id, fileID: file.id)
        }
    }

    func ingest(_ job: Job) async {
        let started = ContinuousClock.now
        var outcome = "completed"
        defer {
            AppMetrics.ingestionBacklog.decrement()
            AppMetrics.ingestion(outcome: outcome, duration: .now - started)
        }
        let rowID = VectorStoreFile.rowID(vectorStoreID: job.vectorStoreID, fileID: job.fileID)
        do {
            guard let entry = try await store.read(project: job.project, { try await $0.get(VectorStoreFile.self, id: rowID) }),
                  entry.status == "in_progress"
            else { return }
            guard try await store.read(project: job.project, { try await $0.exists(.file, id: job.fileID) }),
                  let path = blobs.path(for: job.fileID)
            else {
                throw ExtractionError.invalid("The file '\(job.fileID)' no longer exists.")
            }
            let text = try await TextExtractor.extract(path: path)
            guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ExtractionError.invalid("No text could be extracted from the file.")
            }
            let strategy = entry.chunking_strategy
            var chunks = try await Offload.run { Chunker(strategy: strategy).chunks(of: text) }
            if let embedder {
                let vectors = try await embedder.embed(chunks.map(\.text))
                for index in chunks.indices where index < vectors.count { chunks[index].embedding = vectors[index] }
            }
            let byteCount = text.utf8.count
            let finalChunks = chunks
            try await store.write(project: job.project) { session in
                guard var current = try await session.getForUpdate(VectorStoreFile.self, id: rowID), current.status == "in_progress" else { return }
                try await session.deleteChunks(vectorStoreID: job.vectorStoreID, fileID: job.fileID)
                try await session.insertChunks(finalChunks, vectorStoreID: job.vectorStoreID, fileID: job.fileID)
                current.status = "completed"
                current.usage_bytes = byteCount
                try await session.update(current)
            }
        } catch {
            outcome = "failed"
            let lastError: LastError
            if let extraction = error as? ExtractionError {
                lastError = LastError(code: extraction.code, message: extraction.message)
            } else {
                logger.warning("ingestion failed", metadata: ["file_id": "\(job.fileID)", "error": "\(error)"])
                lastError = LastError(code: "server_error", message: "The file could not be processed: \(error)")
            }
            try? await store.write(project: job.project) { session in
                guard var current = try await session.getForUpdate(VectorStoreFile.self, id: rowID), current.status == "in_progress" else { return }
                current.status = "failed"
                current.last_error = lastError
                try await session.update(current)
            }
        }
    }
}
