import SQLKit

/// A database the store runs its SQL on: the embedded SQLite file or a PostgreSQL server.
/// Both speak the same SQL through SQLKit; only the DDL of the migrations differs.
public protocol DatabaseDriver: Sendable {
    var dialect: DatabaseDialect { get }
    /// Runs reads on a connection that sees every committed write.
    func withReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T
    /// Like `withReader`, for reads that may take long (a full-text search over many chunks, the
    /// engine's periodic scans of every run in flight): on SQLite they run off the event loops.
    func withLongReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T
    /// Runs `body` in one transaction: all its writes commit together, or none does.
    func withTransaction<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T
    func shutdown() async
}

/// The two supported databases.
public enum DatabaseDialect: Sendable {
    case sqlite, postgres
}

extension DatabaseDriver {
    public func withLongReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await withReader(body)
    }

    /// Runs `body` inside BEGIN/COMMIT on `database`, rolling back if it throws.
    nonisolated(nonsending) func transaction<T>(on database: any SQLDatabase, begin: SQLQueryString = "BEGIN", _ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await database.raw(begin).run()
        do {
            let result = try await body(database)
            try await database.raw("COMMIT").run()
            return result
        } catch {
            try? await database.raw("ROLLBACK").run()
            throw error
        }
    }
}

extension Array {
    /// Slices small enough to bind in one statement, a few parameters per element (SQLite allows
    /// 32,766 parameters, PostgreSQL 65,535).
    func bindBatches(of size: Int = 500) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
