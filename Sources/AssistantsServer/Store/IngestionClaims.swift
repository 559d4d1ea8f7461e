import SQLKit

/// Ingestion jobs are the `in_progress` rows of `vector_store_files`; any node takes one by
/// claiming it: the row records the claiming node and the database's time. A claim is taken
/// over when it is older than the node timeout and its node has stopped beating (see
/// `RunOwnership`'s `nodes`). On PostgreSQL concurrent claimers skip each other's locked rows
/// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer, so its claim is one atomic UPDATE.
extension ObjectStore {
    /// A claimed job: the file of a vector store to ingest, in its project.
    public struct IngestionClaim: Sendable {
        public var project: String
        public var vectorStoreID: String
        public var fileID: String
    }

    /// Claims the oldest unclaimed (or orphaned) in-progress file for `node`, among those to be
    /// embedded with `embeddingModel` (`""`: full text only) as the node that queued it does;
    /// nil when there is none. A node configured otherwise never indexes another's files its way.
    public func claimIngestion(node: String, timeout: Int, embeddingModel: String) async throws -> IngestionClaim? {
        let skipLocked: SQLQueryString = driver.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        let row = try await driver.withTransaction { database in
            try await database.raw("""
                UPDATE vector_store_files SET claimed_by = \(bind: node), claimed_at = \(databaseNow)
                WHERE seq = (SELECT seq FROM vector_store_files
                             WHERE status = 'in_progress'
                               AND (embedding_model IS NULL OR embedding_model = \(bind: embeddingModel))
                               AND (claimed_by IS NULL
                                    OR (claimed_at < \(databaseNow) - \(bind: timeout) AND claimed_by NOT IN (\(liveNodes(timeout: timeout)))))
                             ORDER BY seq LIMIT 1\(skipLocked))
                RETURNING project, body
                """).first()
        }
        guard let row else { return nil }
        let file = try JSONCoding.decode(VectorStoreFile.self, from: row.decode(column: "body", as: String.self))
        return IngestionClaim(project: try row.decode(column: "project", as: String.self),
                              vectorStoreID: file.vector_store_id, fileID: file.id)
    }

    /// How many files of every project and node are waiting for or in ingestion.
    public func ingestionBacklog() async throws -> Int {
        try await driver.withReader { database in
            try await database.raw("SELECT COUNT(*) AS n FROM vector_store_files WHERE status = 'in_progress'").first()?
                .decode(column: "n", as: Int.self) ?? 0
        }
    }

    /// Gives back the claims of `node` on files still in progress (at start: its previous life's;
    /// at shutdown: the ones it did not finish), so that any node takes them at once. On SQLite,
    /// the only node, every claim.
    public func releaseIngestionClaims(node: String) async throws {
        let mine: SQLQueryString = driver.dialect == .postgres ? "claimed_by = \(bind: node)" : "claimed_by IS NOT NULL"
        try await driver.withTransaction { database in
            try await database.raw("UPDATE vector_store_files SET claimed_by = NULL WHERE status = 'in_progress' AND \(mine)").run()
        }
    }
}

extension StoreSession {
    /// Records which embedding model a newly queued job is to be ingested with (see `claimIngestion`).
    public func setIngestionEmbedding(rowID: String, model: String) async throws {
        try await database.raw("""
            UPDATE vector_store_files SET embedding_model = \(bind: model) WHERE id = \(bind: rowID) AND project = \(bind: project)
            """).run()
    }

    /// Whether `node` still holds the claim on the row (locked by an earlier read for update):
    /// a node whose claim was taken over while it stalled writes nothing.
    public func holdsIngestionClaim(rowID: String, node: String) async throws -> Bool {
        try await database.raw("""
            SELECT 1 FROM vector_store_files WHERE id = \(bind: rowID) AND project = \(bind: project) AND claimed_by = \(bind: node)
            """).first() != nil
    }
}
