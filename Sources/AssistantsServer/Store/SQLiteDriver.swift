import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit

/// The embedded default: one SQLite file in WAL mode, one writer connection fed by group commit
/// and a few reader connections that run concurrently with it.
public final class SQLiteDriver: DatabaseDriver {
    public let dialect = DatabaseDialect.sqlite
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let nextReader = NIOLockedValueBox(0)
    private let groupCommit: GroupCommit
    private let logger: Logger

    private init(writer: SQLiteConnection, readers: [SQLiteConnection], logger: Logger) {
        self.writer = writer
        self.readers = readers
        self.logger = logger
        self.groupCommit = GroupCommit(database: writer.sql(queryLogLevel: nil))
    }

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readerCount: Int = 4, logger: Logger) async throws -> SQLiteDriver {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var sqlLogger = logger
        sqlLogger.logLevel = .info
        let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: sqlLogger)
        do {
            // WAL: readers never block the writer. synchronous=FULL: a commit is on disk before it is acknowledged.
            for pragma in ["PRAGMA busy_timeout=10000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"] {
                _ = try await writer.query(pragma)
            }
        } catch {
            try? await writer.close()
            throw error
        }
        var readers: [SQLiteConnection] = []
        do {
            for _ in 0..<max(1, readerCount) {
                let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: sqlLogger)
                readers.append(reader)
                _ = try await reader.query("PRAGMA busy_timeout=10000")
            }
        } catch {
            for connection in readers + [writer] { try? await connection.close() }
            throw error
        }
        return SQLiteDriver(writer: writer, readers: readers, logger: logger)
    }

    public func withReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        let index = nextReader.withLockedValue { value -> Int in
            value = (value + 1) % readers.count
            return value
        }
        return try await body(readers[index].sql(queryLogLevel: nil))
    }

    /// Writes go through group commit: concurrent transactions share one COMMIT (and one fsync).
    public func withTransaction<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await groupCommit.run(body)
    }

    public func shutdown() async {
        groupCommit.shutdown()
        for connection in readers + [writer] {
            try? await connection.close()
        }
    }
}
