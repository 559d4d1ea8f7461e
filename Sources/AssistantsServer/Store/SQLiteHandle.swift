import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SQLiteNIO
import VaporCSQLite

/// One libsqlite3 connection used in place: a statement runs to completion on the calling thread
/// (SQLite answers from its page cache in microseconds), with no hop to a thread pool and back per
/// statement, which is where most of a request's CPU went. Prepared statements are kept by their
/// SQL text; a lock lets one caller at a time use the connection.
final class SQLiteHandle: @unchecked Sendable {
    /// A prepared statement and its column names.
    private struct Prepared {
        let statement: OpaquePointer
        let columns: [String]
    }

    // All mutable state is guarded by `lock`.
    private let lock = NIOLock()
    private var connection: OpaquePointer?
    private var statements: [String: Prepared] = [:]
    private static let maxStatements = 256

    init(path: String) throws {
        var connection: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite_nio_sqlite3_open_v2(path, &connection, flags, nil)
        guard status == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite_nio_sqlite3_close(connection)
            throw SQLiteFailure(code: status, message: "cannot open \(path): \(message)")
        }
        sqlite_nio_sqlite3_busy_timeout(connection, 10_000)
        sqlite_nio_sqlite3_extended_result_codes(connection, 1)
        self.connection = connection
    }

    /// Runs one statement with its binds, calling `onRow` with each row's columns and values.
    func execute(_ sql: String, _ binds: [SQLiteData], _ onRow: ([String], [SQLiteData]) throws -> Void) throws {
        try lock.withLock {
            guard let connection else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
            let prepared = try prepare(sql, on: connection)
            let statement = prepared.statement
            defer {
                sqlite_nio_sqlite3_reset(statement)
                // Every parameter is bound again on the next use, so values stay bound until then:
                // clearing them expires any statement whose plan may depend on a bound value (most
                // of ours, in the SQLite 3.54 that sqlite-nio ships), and the next step prepares it
                // again. Large values are let go of at once all the same.
                if binds.contains(where: \.isLarge) { sqlite_nio_sqlite3_clear_bindings(statement) }
            }
            for (offset, value) in binds.enumerated() {
                try check(bind(value, at: Int32(offset + 1), in: statement), on: connection)
            }
            while true {
                let status = sqlite_nio_sqlite3_step(statement)
                if status == SQLITE_DONE { return }
                guard status == SQLITE_ROW else { try check(status, on: connection); return }
                try onRow(prepared.columns, (0..<Int32(prepared.columns.count)).map { column(at: $0, of: statement) })
            }
        }
    }

    /// How many times the cached statements were prepared again (after a schema change, or a
    /// bound value that expired their plan), summed: `SQLITE_STMTSTATUS_REPREPARE`.
    func reprepareCount() -> Int32 {
        lock.withLock {
            statements.values.reduce(0) { $0 + sqlite_nio_sqlite3_stmt_status($1.statement, SQLITE_STMTSTATUS_REPREPARE, 0) }
        }
    }

    /// Finalizes the statements and closes the connection; later calls fail.
    func close() {
        lock.withLock {
            for prepared in statements.values { sqlite_nio_sqlite3_finalize(prepared.statement) }
            statements = [:]
            sqlite_nio_sqlite3_close_v2(connection)
            connection = nil
        }
    }

    private func prepare(_ sql: String, on connection: OpaquePointer) throws -> Prepared {
        if let prepared = statements[sql] { return prepared }
        var statement: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else {
            throw SQLiteFailure(code: status, message: String(cString: sqlite_nio_sqlite3_errmsg(connection)))
        }
        let columns = (0..<sqlite_nio_sqlite3_column_count(statement)).map { index in
            sqlite_nio_sqlite3_column_name(statement, index).map { String(cString: $0) } ?? ""
        }
        if statements.count >= Self.maxStatements {
            for prepared in statements.values { sqlite_nio_sqlite3_finalize(prepared.statement) }
            statements = [:]
        }
        let prepared = Prepared(statement: statement, columns: columns)
        statements[sql] = prepared
        return prepared
    }

    private func bind(_ value: SQLiteData, at index: Int32, in statement: OpaquePointer) -> Int32 {
        switch value {
        case .integer(let integer):
            return sqlite_nio_sqlite3_bind_int64(statement, index, Int64(integer))
        case .float(let double):
            return sqlite_nio_sqlite3_bind_double(statement, index, double)
        case .text(let text):
            return sqlite_nio_sqlite3_bind_text64(statement, index, text, UInt64(text.utf8.count), Self.transient, UInt8(SQLITE_UTF8))
        case .blob(let buffer):
            return buffer.withUnsafeReadableBytes {
                sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), Self.transient)
            }
        case .null:
            return sqlite_nio_sqlite3_bind_null(statement, index)
        }
    }

    private func column(at index: Int32, of statement: OpaquePointer) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER:
            return .integer(Int(sqlite_nio_sqlite3_column_int64(statement, index)))
        case SQLITE_FLOAT:
            return .float(sqlite_nio_sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            guard let text = sqlite_nio_sqlite3_column_text(statement, index) else { return .null }
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            if let bytes = sqlite_nio_sqlite3_column_blob(statement, index) {
                buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
            }
            return .blob(buffer)
        default:
            return .null
        }
    }

    private func check(_ status: Int32, on connection: OpaquePointer) throws {
        guard status != SQLITE_OK else { return }
        throw SQLiteFailure(code: status, message: String(cString: sqlite_nio_sqlite3_errmsg(connection)))
    }

    /// SQLite copies bound text and blobs before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

extension SQLiteData {
    /// Text or a blob over 16 KiB: not kept bound to a cached statement past its execution, so that
    /// the statements a connection caches hold at most that much each.
    fileprivate var isLarge: Bool {
        switch self {
        case .text(let text): text.utf8.count > 16_384
        case .blob(let buffer): buffer.readableBytes > 16_384
        default: false
        }
    }
}

/// An error of libsqlite3: its result code and message.
struct SQLiteFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    var description: String { "SQLite error \(code): \(message)" }
}
