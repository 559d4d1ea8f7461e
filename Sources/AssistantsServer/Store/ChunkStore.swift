import Foundation
import SQLKit

/// A piece of an ingested file, with where it stands in the file's extracted text.
public struct Chunk: Sendable {
    public var index: Int
    public var startOffset: Int
    public var endOffset: Int
    public var text: String
    public var embedding: [Float]?
}

/// A chunk found by a search, with its full-text rank (higher is better).
public struct ChunkHit: Sendable {
    public var seq: Int
    public var vectorStoreID: String
    public var fileID: String
    public var text: String
    public var rank: Double
}

/// Chunk storage and full-text search: FTS5 with bm25 in SQLite, `ts_rank_cd` in PostgreSQL.
extension StoreSession {
    public func insertChunks(_ chunks: [Chunk], vectorStoreID: String, fileID: String) async throws {
        // A transaction's statements run on SQLite's writer thread (GroupCommit) or await
        // PostgreSQL: a big file's thousands of inserts hold no event loop.
        for chunk in chunks {
            let embedding = chunk.embedding.map(VectorCodec.encode)
            try await database.raw("""
                INSERT INTO chunks (project, vector_store_id, file_id, chunk_index, start_offset, end_offset, text, embedding)
                VALUES (\(bind: project), \(bind: vectorStoreID), \(bind: fileID), \(bind: chunk.index), \(bind: chunk.startOffset),
                        \(bind: chunk.endOffset), \(bind: chunk.text), \(bind: embedding))
                """).run()
        }
    }

    /// Deletes the chunks of one file in a store, or of the whole store.
    public func deleteChunks(vectorStoreID: String, fileID: String? = nil) async throws {
        var query: SQLQueryString = "DELETE FROM chunks WHERE project = \(bind: project) AND vector_store_id = \(bind: vectorStoreID)"
        if let fileID { query += " AND file_id = \(bind: fileID)" }
        try await database.raw(query).run()
    }

    /// The chunks of a file in a store, in order.
    public func chunks(vectorStoreID: String, fileID: String) async throws -> [Chunk] {
        try await database.raw("""
            SELECT chunk_index, start_offset, end_offset, text FROM chunks
            WHERE project = \(bind: project) AND vector_store_id = \(bind: vectorStoreID) AND file_id = \(bind: fileID)
            ORDER BY chunk_index
            """).all().map { row in
            Chunk(index: try row.decode(column: "chunk_index", as: Int.self), startOffset: try row.decode(column: "start_offset", as: Int.self),
                  endOffset: try row.decode(column: "end_offset", as: Int.self), text: try row.decode(column: "text", as: String.self))
        }
    }

    /// The best chunks for any of `terms` in the given stores (completed files only), best first.
    public func searchChunks(terms: [String], vectorStoreIDs: [String], limit: Int) async throws -> [ChunkHit] {
        guard !terms.isEmpty, !vectorStoreIDs.isEmpty else { return [] }
        let rows: [any SQLRow]
        switch dialect {
        case .sqlite:
            let match = terms.map { "\"\($0)\"" }.joined(separator: " OR ")
            rows = try await database.raw("""
                SELECT c.seq AS seq, c.vector_store_id AS vector_store_id, c.file_id AS file_id, c.text AS text, -bm25(chunks_fts) AS rank
                FROM chunks_fts JOIN chunks c ON c.seq = chunks_fts.rowid
                WHERE chunks_fts MATCH \(bind: match) AND c.project = \(bind: project)
                AND c.vector_store_id IN (\(binds: vectorStoreIDs))
                ORDER BY bm25(chunks_fts) LIMIT \(literal: limit)
                """).all()
        case .postgres:
            let query = terms.joined(separator: " | ")
            rows = try await database.raw("""
                SELECT seq, vector_store_id, file_id, text, ts_rank_cd(tsv, to_tsquery('english', \(bind: query)), 1)::float8 AS rank
                FROM chunks
                WHERE tsv @@ to_tsquery('english', \(bind: query)) AND project = \(bind: project)
                AND vector_store_id IN (\(binds: vectorStoreIDs))
                ORDER BY rank DESC, seq LIMIT \(literal: limit)
                """).all()
        }
        return try rows.map { row in
            ChunkHit(seq: try row.decode(column: "seq", as: Int.self), vectorStoreID: try row.decode(column: "vector_store_id", as: String.self),
                     fileID: try row.decode(column: "file_id", as: String.self), text: try row.decode(column: "text", as: String.self),
                     rank: try row.decode(column: "rank", as: Double.self))
        }
    }

    /// Each store's chunk generation (0 when none was ever written): a trigger bumps it whenever
    /// a chunk of the store is written or removed, by any server on the database.
    public func vectorGenerations(vectorStoreIDs: [String]) async throws -> [String: Int] {
        guard !vectorStoreIDs.isEmpty else { return [:] }
        var generations: [String: Int] = [:]
        for row in try await database.raw("""
            SELECT vector_store_id, generation FROM vector_store_generations WHERE vector_store_id IN (\(binds: vectorStoreIDs))
            """).all() {
            generations[try row.decode(column: "vector_store_id", as: String.self)] = try row.decode(column: "generation", as: Int.self)
        }
        return generations
    }

    /// How many chunks of a store have an embedding (what a vector index of it holds).
    public func embeddingCount(vectorStoreID: String) async throws -> Int {
        try await database.raw("""
            SELECT CAST(COUNT(*) AS BIGINT) AS n FROM chunks
            WHERE project = \(bind: project) AND vector_store_id = \(bind: vectorStoreID) AND embedding IS NOT NULL
            """).first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Up to `limit` embeddings of a store with `seq` past `afterSeq`, in `seq` order: one page of a vector index's load.
    public func embeddingPage(vectorStoreID: String, afterSeq: Int, limit: Int) async throws -> [(seq: Int, embedding: Data)] {
        try await database.raw("""
            SELECT seq, embedding FROM chunks
            WHERE project = \(bind: project) AND vector_store_id = \(bind: vectorStoreID) AND embedding IS NOT NULL AND seq > \(bind: afterSeq)
            ORDER BY seq LIMIT \(literal: limit)
            """).all().map { row in
            (try row.decode(column: "seq", as: Int.self), try row.decode(column: "embedding", as: Data.self))
        }
    }

    /// The chunks with these `seq`s that still exist, in no particular order (rank 0).
    public func chunkHits(seqs: [Int]) async throws -> [ChunkHit] {
        guard !seqs.isEmpty else { return [] }
        return try await database.raw("""
            SELECT seq, vector_store_id, file_id, text FROM chunks WHERE project = \(bind: project) AND seq IN (\(binds: seqs))
            """).all().map { row in
            ChunkHit(seq: try row.decode(column: "seq", as: Int.self), vectorStoreID: try row.decode(column: "vector_store_id", as: String.self),
                     fileID: try row.decode(column: "file_id", as: String.self), text: try row.decode(column: "text", as: String.self), rank: 0)
        }
    }

    /// File counts and bytes of a vector store's files (or of one batch's), by status.
    public func fileCounts(vectorStoreID: String, batchID: String? = nil) async throws -> (counts: FileCounts, bytes: Int) {
        var query: SQLQueryString = """
            SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM vector_store_files WHERE project = \(bind: project) AND parent_id = \(bind: vectorStoreID)
            """
        if let batchID { query += " AND tag = \(bind: batchID)" }
        query += " GROUP BY status"
        var counts = FileCounts()
        for row in try await database.raw(query).all() {
            counts.add(status: try row.decode(column: "status", as: String.self), count: try row.decode(column: "n", as: Int.self))
        }
        // The bytes of extracted text: each completed file's `usage_bytes`, read from the store's
        // file rows (not from its chunks: a store of 100k chunks would be read whole at each GET).
        let usage: SQLQueryString = dialect == .sqlite ? "json_extract(body, '$.usage_bytes')" : "(body::jsonb->>'usage_bytes')::bigint"
        let bytes = try await database.raw("""
            SELECT CAST(COALESCE(SUM(\(usage)), 0) AS BIGINT) AS bytes FROM vector_store_files
            WHERE project = \(bind: project) AND parent_id = \(bind: vectorStoreID) AND status = 'completed'
            """).first()?.decode(column: "bytes", as: Int.self) ?? 0
        return (counts, bytes)
    }
}

extension Migrations {
    /// `vector_store_generations`: a counter per vector store that triggers on `chunks` bump in
    /// the transaction that writes or removes its chunks, whichever code path (or server) does it.
    /// A cached vector index is current while the counter it was loaded at still holds.
    static func vectorGenerationTables(dialect: DatabaseDialect) -> [SQLQueryString] {
        let table: SQLQueryString = "CREATE TABLE IF NOT EXISTS vector_store_generations (vector_store_id TEXT PRIMARY KEY, generation BIGINT NOT NULL)"
        // A store's embeddings are loaded in pages of `seq` ranges.
        let pages: SQLQueryString = "CREATE INDEX IF NOT EXISTS chunks_store_seq ON chunks (vector_store_id, seq)"
        switch dialect {
        case .sqlite:
            return [table, pages] + [("ai", "INSERT", "new"), ("ad", "DELETE", "old")].map { (name: String, event: String, row: String) -> SQLQueryString in
                """
                CREATE TRIGGER IF NOT EXISTS chunks_generation_\(unsafeRaw: name) AFTER \(unsafeRaw: event) ON chunks BEGIN
                INSERT INTO vector_store_generations (vector_store_id, generation) VALUES (\(unsafeRaw: row).vector_store_id, 1)
                ON CONFLICT (vector_store_id) DO UPDATE SET generation = generation + 1; END
                """
            }
        case .postgres:
            // One bump per statement and store (a transition table), in a fixed order so that two
            // transactions touching the same stores cannot deadlock on their counters.
            return [table, pages, """
                CREATE OR REPLACE FUNCTION chunks_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO vector_store_generations (vector_store_id, generation)
                    SELECT DISTINCT vector_store_id, 1 FROM changed ORDER BY vector_store_id
                    ON CONFLICT (vector_store_id) DO UPDATE SET generation = vector_store_generations.generation + 1;
                    RETURN NULL;
                END $$
                """] + [("ai", "INSERT", "NEW"), ("ad", "DELETE", "OLD")].map { (name: String, event: String, row: String) -> SQLQueryString in
                """
                CREATE OR REPLACE TRIGGER chunks_generation_\(unsafeRaw: name) AFTER \(unsafeRaw: event) ON chunks
                REFERENCING \(unsafeRaw: row) TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION chunks_bump_generation()
                """
            }
        }
    }
}
