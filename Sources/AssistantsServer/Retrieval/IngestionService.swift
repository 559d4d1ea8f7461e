import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import Tracing

/// Ingests vector-store files in the background: extract the text, chunk it, index it. A job is
/// an `in_progress` row of `vector_store_files`, claimed by one node at a time (`IngestionClaims`):
/// the node that queued it is woken at once, every node also looks for unclaimed and orphaned
/// jobs every few seconds, so any node takes any job and a dead node's jobs are taken over.
/// Durable: a file stays `in_progress` until its chunks are committed with it `completed`.
public final class IngestionService: Service, Sendable {
    typealias Job = ObjectStore.IngestionClaim

    let store: ObjectStore
    let blobs: any BlobStore
    let embedder: Embedder?
    /// The model this node embeds with (`""`: none); it takes only jobs queued for the same.
    var embeddingModel: String { embedder?.model ?? "" }
    let logger: Logger
    let workers: Int
    let nodeID: String
    let nodeTimeout: Int
    /// How often an idle worker looks for jobs nobody woke it for (queued on another node, or orphaned).
    let pollInterval: Duration
    private let wakeup = JobSignal()
    /// The trace context of the request that queued a job (its span becomes the ingestion's parent), by row id.
    private let contexts = NIOLockedValueBox<[String: ServiceContext]>([:])

    init(store: ObjectStore, blobs: any BlobStore, embedder: Embedder?, logger: Logger, workers: Int = 2,
         nodeID: String = "local", nodeTimeout: Int = 15) {
        self.store = store
        self.blobs = blobs
        self.embedder = embedder
        self.logger = logger
        self.workers = workers
        self.nodeID = nodeID
        self.nodeTimeout = max(3, nodeTimeout)
        self.pollInterval = .seconds(min(5, max(1, nodeTimeout / 3)))
    }

    /// Wakes a worker for a file whose `in_progress` row has been committed.
    public func enqueue(project: String, vectorStoreID: String, fileID: String) {
        if let context = ServiceContext.current {
            contexts.withLockedValue { $0[VectorStoreFile.rowID(vectorStoreID: vectorStoreID, fileID: fileID)] = context }
        }
        wakeup.signal()
    }

    public func run() async throws {
        do {
            // Claims of this node's previous life are given back, to be taken again at once.
            try await store.releaseIngestionClaims(node: nodeID)
        } catch {
            logger.error("could not resume file ingestion", metadata: ["error": "\(error)"])
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<self.workers {
                    group.addTask { await self.work() }
                }
                group.addTask {
                    // The backlog gauge: the database's count, shared by every node.
                    while !Task.isCancelled {
                        if let count = try? await self.store.ingestionBacklog() { AppMetrics.ingestionBacklog.set(count) }
                        try? await Task.sleep(for: self.pollInterval)
                    }
                }
            }
        }
        // What this node did not finish, another node (or its next life) takes at once.
        try? await store.releaseIngestionClaims(node: nodeID)
    }

    /// One worker: claims and ingests jobs until there are none, then waits for a wake-up or the poll interval.
    func work() async {
        while !Task.isCancelled {
            let job: Job?
            do {
                job = try await store.claimIngestion(node: nodeID, timeout: nodeTimeout, embeddingModel: embeddingModel)
            } catch {
                logger.warning("could not claim an ingestion job", metadata: ["error": "\(error)"])
                job = nil
            }
            guard let job else {
                await wakeup.wait(timeout: pollInterval)
                continue
            }
            let rowID = VectorStoreFile.rowID(vectorStoreID: job.vectorStoreID, fileID: job.fileID)
            let context = contexts.withLockedValue { $0.removeValue(forKey: rowID) }
            await withSpan("file ingestion", context: context ?? .topLevel, ofKind: .internal) { span in
                span.attributes["assistants.file_id"] = job.fileID
                span.attributes["assistants.vector_store_id"] = job.vectorStoreID
                await self.ingest(job)
            }
        }
    }

    func ingest(_ job: Job) async {
        let started = ContinuousClock.now
        var outcome = "completed"
        defer {
            AppMetrics.ingestion(outcome: outcome, duration: .now - started)
        }
        let rowID = VectorStoreFile.rowID(vectorStoreID: job.vectorStoreID, fileID: job.fileID)
        do {
            guard let entry = try await store.read(project: job.project, { try await $0.get(VectorStoreFile.self, id: rowID) }),
                  entry.status == "in_progress"
            else { return }
            guard try await store.read(project: job.project, { try await $0.exists(.file, id: job.fileID) }),
                  let path = try await blobs.localPath(fileID: job.fileID)
            else {
                throw ExtractionError.invalid("The file '\(job.fileID)' no longer exists.")
            }
            let text = try await TextExtractor.extract(path: path)
            guard text.unicodeScalars.contains(where: { !CharacterSet.whitespacesAndNewlines.contains($0) }) else {
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
                guard var current = try await session.getForUpdate(VectorStoreFile.self, id: rowID), current.status == "in_progress",
                      try await session.holdsIngestionClaim(rowID: rowID, node: nodeID) else { return }
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
            // A job cut short by shutdown stays in progress, for the next node to take.
            if Task.isCancelled { outcome = "interrupted"; return }
            try? await store.write(project: job.project) { session in
                guard var current = try await session.getForUpdate(VectorStoreFile.self, id: rowID), current.status == "in_progress",
                      try await session.holdsIngestionClaim(rowID: rowID, node: nodeID) else { return }
                current.status = "failed"
                current.last_error = lastError
                try await session.update(current)
            }
        }
    }
}
