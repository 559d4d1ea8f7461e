import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO

/// SQLKit's view of a `SQLiteHandle`: a query is serialized in SQLite's dialect and run in place,
/// or, with `offload`, on NIO's thread pool (a COMMIT's fsync, a long full-text search).
struct SQLiteHandleDatabase: SQLDatabase {
    let handle: SQLiteHandle
    let logger: Logger
    let eventLoop: any EventLoop
    var offload = false

    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        let (sql, binds) = serialize(query)
        let handle = handle
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            try Self.run(sql, binds, on: handle, onRow)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        let (sql, binds) = serialize(query)
        guard offload else { return try Self.run(sql, binds, on: handle, onRow) }
        let handle = handle
        try await Offload.run { try Self.run(sql, binds, on: handle, onRow) }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }

    private static func run(_ sql: String, _ binds: [any Encodable & Sendable], on handle: SQLiteHandle,
                            _ onRow: @Sendable (any SQLRow) -> ()) throws {
        let encoder = SQLiteDataEncoder()
        // The store's binds are strings and integers: those skip the encoder's protocol lookups.
        let values = try binds.map { bind -> SQLiteData in
            switch bind {
            case let text as String: .text(text)
            case let integer as Int: .integer(integer)
            default: try encoder.encode(bind)
            }
        }
        try handle.execute(sql, values) { columns, row in onRow(SQLiteValuesRow(columns: columns, values: row)) }
    }
}

/// One result row of a `SQLiteHandle` statement, decoded as SQLiteKit decodes its own rows.
struct SQLiteValuesRow: SQLRow {
    let columns: [String]
    let values: [SQLiteData]

    var allColumns: [String] { columns }

    func contains(column: String) -> Bool { columns.contains(column) }

    func decodeNil(column: String) throws -> Bool {
        if case .null = try value(column) { return true }
        return false
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        try SQLiteDataDecoder().decode(D.self, from: value(column))
    }

    private func value(_ column: String) throws -> SQLiteData {
        guard let index = columns.firstIndex(of: column) else {
            throw DecodingError.keyNotFound(SQLiteColumnKey(stringValue: column),
                                            .init(codingPath: [], debugDescription: "no column '\(column)' in the row"))
        }
        return values[index]
    }
}

/// A column name as a coding key, for decoding errors.
private struct SQLiteColumnKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
