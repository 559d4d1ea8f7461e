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

    static func all(dialect: DatabaseDialect) -> [(version: Int, statements: [SQLQueryString])] {
        [
            (1, ObjectKind.allCases.flatMap { objectTable($0.rawValue, dialect: dialect) } + [
                "CREATE INDEX IF NOT EXISTS runs_status ON runs (status)"
            ]),
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
