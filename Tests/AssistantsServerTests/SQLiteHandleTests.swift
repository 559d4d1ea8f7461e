import Foundation
import NIOCore
import NIOPosix
import SQLKit
import SQLiteNIO
import Testing
@testable import AssistantsServer

/// The in-place SQLite connection under the store: values round-trip, errors surface, and its
/// statement cache stays correct when the same SQL runs with other binds.
@Suite struct SQLiteHandleTests {
    private func database() throws -> (SQLiteHandle, SQLiteHandleDatabase) {
        let handle = try SQLiteHandle(path: TestSupport.temporaryDirectory() + "/handle.sqlite")
        return (handle, SQLiteHandleDatabase(handle: handle, logger: TestSupport.logger, eventLoop: MultiThreadedEventLoopGroup.singleton.any()))
    }

    @Test func valuesRoundTripThroughBindsAndRows() async throws {
        let (handle, database) = try database()
        defer { handle.close() }
        try await database.raw("CREATE TABLE t (i INTEGER, d REAL, s TEXT, n TEXT)").run()
        for (index, text) in ["plain", "ünïcødé ✓", "quote ' and \"", ""].enumerated() {
            let nothing: String? = nil
            try await database.raw("INSERT INTO t (i, d, s, n) VALUES (\(bind: index), \(bind: Double(index) + 0.5), \(bind: text), \(bind: nothing))").run()
        }
        let rows = try await database.raw("SELECT i, d, s, n FROM t ORDER BY i").all()
        #expect(rows.count == 4)
        #expect(try rows.map { try $0.decode(column: "s", as: String.self) } == ["plain", "ünïcødé ✓", "quote ' and \"", ""])
        #expect(try rows[2].decode(column: "i", as: Int.self) == 2)
        #expect(try rows[2].decode(column: "d", as: Double.self) == 2.5)
        #expect(try rows[1].decodeNil(column: "n"))
        #expect(try rows[1].decode(column: "n", as: String?.self) == nil)
        #expect(throws: DecodingError.self) { try rows[0].decode(column: "missing", as: Int.self) }
    }

    @Test func cachedStatementsTakeNewBinds() async throws {
        let (handle, database) = try database()
        defer { handle.close() }
        try await database.raw("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)").run()
        for index in 0..<50 {
            try await database.raw("INSERT INTO t (k, v) VALUES (\(bind: "k\(index)"), \(bind: index * index))").run()
        }
        for index in [0, 7, 49] {
            let row = try await database.raw("SELECT v FROM t WHERE k = \(bind: "k\(index)")").first()
            #expect(try row?.decode(column: "v", as: Int.self) == index * index)
        }
        // a statement left half-read (first row only) does not leak into the next use
        #expect(try await database.raw("SELECT k FROM t ORDER BY v").first()?.decode(column: "k", as: String.self) == "k0")
        #expect(try await database.raw("SELECT k FROM t ORDER BY v").all().count == 50)
    }

    /// A thread's messages, read as `StoreSession.all` reads them, many times with other binds:
    /// the cached statement is never prepared again (clearing its binds used to expire it).
    @Test func cachedStatementsAreNotPreparedAgain() async throws {
        let (handle, database) = try database()
        defer { handle.close() }
        for statement in Migrations.objectTable("messages", dialect: .sqlite) { try await database.raw(statement).run() }
        let session = StoreSession(database: database, dialect: .sqlite, project: "proj_1")
        for index in 0..<6 {
            let message = Message(id: "msg_\(index)", created_at: index, thread_id: "thread_\(index % 3)", role: "user", content: [])
            try await session.insert(message)
        }
        for index in 0..<6 {
            #expect(try await session.all(Message.self, parentID: "thread_\(index % 3)").count == 2)
        }
        // a value too large to keep bound is let go of, and the statement still works after it
        let large = String(repeating: "x", count: 100_000)
        #expect(try await database.raw("SELECT length(\(bind: large)) AS n").first()?.decode(column: "n", as: Int.self) == 100_000)
        #expect(try await database.raw("SELECT length(\(bind: "short")) AS n").first()?.decode(column: "n", as: Int.self) == 5)
        #expect(handle.reprepareCount() == 0)
    }

    @Test func errorsSurfaceAndTheConnectionStaysUsable() async throws {
        let (handle, database) = try database()
        defer { handle.close() }
        try await database.raw("CREATE TABLE t (k TEXT PRIMARY KEY)").run()
        try await database.raw("INSERT INTO t (k) VALUES ('a')").run()
        await #expect(throws: SQLiteFailure.self) { try await database.raw("INSERT INTO t (k) VALUES ('a')").run() }
        await #expect(throws: SQLiteFailure.self) { try await database.raw("SELEKT nonsense").run() }
        try await database.raw("INSERT INTO t (k) VALUES ('b')").run()
        #expect(try await database.raw("SELECT k FROM t").all().count == 2)
    }

    @Test func aClosedHandleRefusesWork() async throws {
        let (handle, database) = try database()
        handle.close()
        await #expect(throws: SQLiteFailure.self) { try await database.raw("SELECT 1").run() }
    }
}
