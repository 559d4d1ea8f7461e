import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLKit

/// The embedded default: one SQLite file in WAL mode, one writer connection fed by group commit
/// and a few reader connections that run concurrently with it. Statements run in place on
/// `SQLiteHandle`s: the writer's on its own thread (see `GroupCommit`), a reader's in place, and
/// long searches on NIO's thread pool.
public final class SQLiteDriver: DatabaseDriver {
    public let dialect = DatabaseDialect.sqlite
    private let writer: SQLiteHandle
    private let readers: [SQLiteHandle]
    private let nextReader = NIOLockedValueBox(0)
    private let groupCommit: GroupCommit
    private let logger: Logger
    private let eventLoop: any EventLoop

    private init(writer: SQLiteHandle, readers: [SQLiteHandle], logger: Logger) {
        self.writer = writer
        self.readers = readers
        self.logger = logger
        let eventLoop = MultiThreadedEventLoopGroup.singleton.any()
        self.eventLoop = eventLoop
        self.groupCommit = GroupCommit(database: SQLiteHandleDatabase(handle: writer, logger: logger, eventLoop: eventLoop))
    }

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readerCount: Int = 4, logger: Logger) async throws -> SQLiteDriver {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let writer = try SQLiteHandle(path: path)
        var readers: [SQLiteHandle] = []
        do {
            // WAL: readers never block the writer. synchronous=FULL: a commit is on disk before it is acknowledged.
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"] {
                try writer.execute(pragma, []) { _, _ in }
            }
            for _ in 0..<max(1, readerCount) {
                readers.append(try SQLiteHandle(path: path))
            }
        } catch {
            for handle in readers + [writer] { handle.close() }
            throw error
        }
        return SQLiteDriver(writer: writer, readers: readers, logger: logger)
    }

    private func reader() -> SQLiteHandle {
        let index = nextReader.withLockedValue { value -> Int in
            value = (value + 1) % readers.count
            return value
        }
        return readers[index]
    }

    public func withReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await body(SQLiteHandleDatabase(handle: reader(), logger: logger, eventLoop: eventLoop))
        } catch {
            throw StoreError.classify(error)
        }
    }

    public func withLongReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await body(SQLiteHandleDatabase(handle: reader(), logger: logger, eventLoop: eventLoop, offload: true))
        } catch {
            throw StoreError.classify(error)
        }
    }

    /// Writes go through group commit: concurrent transactions share one COMMIT (and one fsync).
    public func withTransaction<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await groupCommit.run(body)
        } catch {
            // A file that cannot be written (disk full, I/O error) is the database being unavailable.
            throw StoreError.classify(error)
        }
    }

    public func shutdown() async {
        groupCommit.shutdown()
        for handle in readers + [writer] {
            handle.close()
        }
    }
}
