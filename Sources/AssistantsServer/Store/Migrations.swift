import SQLKit

/// The versioned schema, applied in order at start; each version runs once, in one transaction.
enum Migrations {
    /// Every resource table has the same shape: the object's JSON in `body`, plus the columns lists filter on.
    /// `seq` is the creation order, the tiebreak when objects share a `created_at` second.
    static func objectTable(_ name: String, dialect: DatabaseDialect) -> [SQLQueryString] {
        let seq = dialect == .sqlite ? "seq INTEGER PRIMARY KEY AUTOINCREMENT" : "seq BIGSERIAL PRIMARY KEY"
        return [
            """
            CREATE TABLE IF NOT EXISTS \(unsafeRaw: name) (
                \(unsafeRaw: seq),
                id TEXT NOT NULL UNIQUE,
                project TEXT NOT NULL,
                parent_id TEXT,
                status TEXT,
                tag TEXT,
                created_at BIGINT NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS \(unsafeRaw: name)_scope ON \(unsafeRaw: name) (project, parent_id, seq)",
        ]
    }

    /// The chunks of ingested files and their full-text index: FTS5 (bm25) in SQLite, a tsvector in PostgreSQL.
    static func chunkTables(dialect: DatabaseDialect) -> [SQLQueryString] {
        let columns = """
            project TEXT NOT NULL,
            vector_store_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            chunk_index INTEGER NOT NULL,
            start_offset BIGINT NOT NULL,
            end_offset BIGINT NOT NULL,
            text TEXT NOT NULL
            """
        switch dialect {
        case .sqlite:
            return [
                "CREATE TABLE IF NOT EXISTS chunks (seq INTEGER PRIMARY KEY AUTOINCREMENT, \(unsafeRaw: columns), embedding BLOB)",
                "CREATE INDEX IF NOT EXISTS chunks_file ON chunks (vector_store_id, file_id, chunk_index)",
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, content='chunks', content_rowid='seq', tokenize='porter unicode61')",
                "CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN INSERT INTO chunks_fts(rowid, text) VALUES (new.seq, new.text); END",
                "CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.seq, old.text); END",
            ]
        case .postgres:
            return [
                "CREATE TABLE IF NOT EXISTS chunks (seq BIGSERIAL PRIMARY KEY, \(unsafeRaw: columns), embedding BYTEA, tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)",
                "CREATE INDEX IF NOT EXISTS chunks_file ON chunks (vector_store_id, file_id, chunk_index)",
                "CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING GIN (tsv)",
            ]
        }
    }

    /// A blob's 1 MiB chunks, and the row that says it is whole (written last, in the same
    /// transaction). Only PostgreSQL keeps blobs; chunks are stored uncompressed (EXTERNAL).
    static func blobTables(dialect: DatabaseDialect) -> [SQLQueryString] {
        guard dialect == .postgres else { return [] }
        return [
            "CREATE TABLE IF NOT EXISTS blobs (file_id TEXT PRIMARY KEY, size BIGINT NOT NULL, chunks INTEGER NOT NULL, created_at BIGINT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS blob_chunks (file_id TEXT NOT NULL, seq INTEGER NOT NULL, bytes BYTEA NOT NULL, PRIMARY KEY (file_id, seq))",
            "ALTER TABLE blob_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL",
        ]
    }

    /// Runs by status, then by the `expires_at` in their JSON, written as `ObjectStore.expiresAt` reads it.
    static func runsExpiryIndex(dialect: DatabaseDialect) -> SQLQueryString {
        switch dialect {
        case .sqlite: "CREATE INDEX IF NOT EXISTS runs_active_expiry ON runs (status, json_extract(body, '$.expires_at'))"
        case .postgres: "CREATE INDEX IF NOT EXISTS runs_active_expiry ON runs (status, ((body::jsonb ->> 'expires_at')::bigint))"
        }
    }

    static func all(dialect: DatabaseDialect) -> [(version: Int, statements: [SQLQueryString])] {
        [
            (1, [ObjectKind.assistant, .thread, .message, .file, .run, .runStep].flatMap { objectTable($0.rawValue, dialect: dialect) } + [
                "CREATE INDEX IF NOT EXISTS runs_status ON runs (status)"
            ]),
            (2, [ObjectKind.vectorStore, .vectorStoreFile, .fileBatch].flatMap { objectTable($0.rawValue, dialect: dialect) }
                + ["CREATE INDEX IF NOT EXISTS vector_store_files_status ON vector_store_files (status)"]
                + chunkTables(dialect: dialect)),
            // Several servers on one database: which node runs a run, and which nodes are alive (RunOwnership).
            (3, ["ALTER TABLE runs ADD COLUMN owner TEXT",
                 "CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, heartbeat_at BIGINT NOT NULL)"]),
            // Fencing (RunOwnership): a run's lease is (owner, epoch); taking a run over bumps the epoch.
            (4, ["ALTER TABLE runs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0",
                 "CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner, status)"]),
            // File bytes every node reads (PostgresBlobStore), and ingestion jobs any node claims (IngestionClaims).
            (5, blobTables(dialect: dialect) + ["ALTER TABLE vector_store_files ADD COLUMN claimed_by TEXT",
                                                 "ALTER TABLE vector_store_files ADD COLUMN claimed_at BIGINT"]),
            // Each vector store's chunk generation, bumped by triggers on every chunk written or removed (VectorIndexCache).
            (6, vectorGenerationTables(dialect: dialect)),
            // The embedding model a job is to be ingested with: only a node that embeds with it claims the job.
            (7, ["ALTER TABLE vector_store_files ADD COLUMN embedding_model TEXT"]),
            // The engine looks for expired runs every second (RunOwnership.runsExpired): by status and
            // `expires_at` in one index, the look reads the expired runs, not every active run's JSON
            // (10,000 of them held an event loop ~50 ms a second). It covers runs_status's lookups too.
            (8, [runsExpiryIndex(dialect: dialect), "DROP INDEX IF EXISTS runs_status"]),
        ]
    }

    static func apply(on driver: any DatabaseDriver) async throws {
        for migration in all(dialect: driver.dialect) {
            try await driver.withTransaction { database in
                if driver.dialect == .postgres {
                    // Several servers may start at once against one database: one migrates, the others wait.
                    try await database.raw("SELECT pg_advisory_xact_lock(4242)").run()
                }
                try await database.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)").run()
                let done = try await database.raw("SELECT version FROM schema_migrations WHERE version = \(bind: migration.version)").first()
                guard done == nil else { return }
                for statement in migration.statements {
                    try await database.raw(statement).run()
                }
                try await database.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: migration.version), \(bind: unixNow()))").run()
            }
        }
    }
}
