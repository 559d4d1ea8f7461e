import Foundation
import Logging
import SQLKit
import Tracing

/// The store of every object the API keeps. Reads and writes go through a `StoreSession`
/// scoped to one project, so one tenant's objects are invisible to another's.
public final class ObjectStore: Sendable {
    public let driver: any DatabaseDriver

    public init(driver: any DatabaseDriver) {
        self.driver = driver
    }

    /// Opens the database a URL names (`sqlite://PATH` or `postgres://…`) and applies the migrations.
    public static func open(url: String, logger: Logger) async throws -> ObjectStore {
        let driver: any DatabaseDriver
        if url.hasPrefix("sqlite://") {
            driver = try await SQLiteDriver.open(path: String(url.dropFirst("sqlite://".count)), logger: logger)
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            driver = try await PostgresDriver.connect(url: url, logger: logger)
        } else {
            throw ConfigurationError("unsupported database URL '\(url)': use sqlite://PATH or postgres://user:pass@host:port/db")
        }
        do {
            try await Migrations.apply(on: driver)
        } catch {
            await driver.shutdown()
            throw error
        }
        return ObjectStore(driver: driver)
    }

    public func read<T: Sendable>(project: String, _ body: (StoreSession) async throws -> T) async throws -> T {
        try await driver.withReader { try await body(StoreSession(database: $0, dialect: driver.dialect, project: project)) }
    }

    /// A read that may take long (searching many chunks): kept off the threads that serve requests.
    public func search<T: Sendable>(project: String, _ body: (StoreSession) async throws -> T) async throws -> T {
        try await driver.withLongReader { try await body(StoreSession(database: $0, dialect: driver.dialect, project: project)) }
    }

    /// One transaction: every write in `body` is durable once this returns, or none happened.
    /// `body` runs exactly once (on SQLite inside a savepoint of a shared group transaction; on
    /// PostgreSQL in a transaction of its own), must not keep the session past its return, and
    /// sees the writes of transactions committed before it; what it throws is rethrown here.
    @discardableResult
    public func write<T: Sendable>(project: String, _ body: (StoreSession) async throws -> T) async throws -> T {
        // A span per transaction (its wait for the group commit included) when traces are on.
        try await withSpan("db transaction", ofKind: .client) { span in
            span.attributes["db.system.name"] = driver.dialect == .sqlite ? "sqlite" : "postgresql"
            return try await driver.withTransaction { try await body(StoreSession(database: $0, dialect: driver.dialect, project: project)) }
        }
    }

    /// The stored JSON's `expires_at`, read by the database (runs, files and vector stores have one).
    var expiresAt: SQLQueryString {
        switch driver.dialect {
        case .sqlite: "json_extract(body, '$.expires_at')"
        case .postgres: "(body::jsonb ->> 'expires_at')::bigint"
        }
    }

    /// A run of any project, with its project and its lease: the node that owns it and the epoch (see `RunOwnership`).
    public typealias OwnedRun = (project: String, run: Run, owner: String?, epoch: Int)

    /// The runs of every project that match `condition`, in creation order.
    func runs(where condition: SQLQueryString) async throws -> [OwnedRun] {
        try await driver.withReader { database in
            let rows = try await database.raw("SELECT project, owner, epoch, body FROM runs WHERE \(condition) ORDER BY seq").all()
            return try rows.map { row in
                (try row.decode(column: "project", as: String.self),
                 try JSONCoding.decode(Run.self, from: row.decode(column: "body", as: String.self)),
                 try row.decode(column: "owner", as: String?.self),
                 try row.decode(column: "epoch", as: Int.self))
            }
        }
    }

    public func shutdown() async {
        await driver.shutdown()
    }
}

/// Cursor-list parameters: `limit`, `order`, `after`, `before`.
public struct PageRequest: Sendable {
    public var limit: Int
    public var ascending: Bool
    public var after: String?
    public var before: String?

    public init(limit: Int = 20, ascending: Bool = false, after: String? = nil, before: String? = nil) {
        self.limit = limit
        self.ascending = ascending
        self.after = after
        self.before = before
    }
}

/// One page of a list, as the stored JSON of each object.
public struct Page: Sendable {
    public var ids: [String]
    public var bodies: [String]
    public var hasMore: Bool

    /// The list object: `{"object":"list","data":[…],"first_id","last_id","has_more"}`.
    public var json: String {
        func quoted(_ id: String?) -> String {
            guard let id else { return "null" }
            return (try? JSONCoding.string(id)) ?? "null"
        }
        return "{\"object\":\"list\",\"data\":[\(bodies.joined(separator: ","))],\"first_id\":\(quoted(ids.first)),\"last_id\":\(quoted(ids.last)),\"has_more\":\(hasMore)}"
    }
}

/// An object and the exact JSON it is stored as. A read-modify-write that finds the same JSON in
/// the row uses the object as it is instead of decoding it again, and the JSON can be sent as is.
public struct Stored<Object: StoredObject>: Sendable {
    public var object: Object
    public var body: String

    public init(_ object: Object, body: String) {
        self.object = object
        self.body = body
    }
}

/// The store's operations inside one read or transaction, scoped to one project.
public struct StoreSession {
    let database: any SQLDatabase
    let dialect: DatabaseDialect
    public let project: String

    /// Inserts the object; returns the JSON it is stored as.
    @discardableResult
    public func insert<T: StoredObject>(_ object: T) async throws -> String {
        let body = try JSONCoding.string(object)
        try await insert(object, body: body)
        return body
    }

    /// Inserts the object as `body`, its JSON as `JSONCoding.string(object)` already made it.
    public func insert<T: StoredObject>(_ object: T, body: String) async throws {
        try await database.raw("""
            INSERT INTO \(unsafeRaw: T.kind.rawValue) (id, project, parent_id, status, tag, created_at, body)
            VALUES (\(bind: object.rowID), \(bind: project), \(bind: object.parentID), \(bind: object.indexedStatus), \(bind: object.tag), \(bind: object.created_at), \(bind: body))
            """).run()
    }

    /// Replaces the stored object; returns the JSON it is now stored as.
    @discardableResult
    public func update<T: StoredObject>(_ object: T) async throws -> String {
        let body = try JSONCoding.string(object)
        try await database.raw("""
            UPDATE \(unsafeRaw: T.kind.rawValue) SET body = \(bind: body), status = \(bind: object.indexedStatus), tag = COALESCE(\(bind: object.tag), tag)
            WHERE id = \(bind: object.rowID) AND project = \(bind: project)
            """).run()
        return body
    }

    /// The stored JSON of one object, as the API returns it. `forUpdate` locks its row until the
    /// transaction ends (PostgreSQL's `FOR UPDATE`; SQLite has one writer anyway).
    public func body(_ kind: ObjectKind, id: String, parentID: String? = nil, forUpdate: Bool = false) async throws -> String? {
        var query: SQLQueryString = "SELECT body FROM \(unsafeRaw: kind.rawValue) WHERE id = \(bind: id) AND project = \(bind: project)"
        if let parentID { query += " AND parent_id = \(bind: parentID)" }
        if forUpdate && dialect == .postgres { query += " FOR UPDATE" }
        return try await database.raw(query).first()?.decode(column: "body", as: String.self)
    }

    public func get<T: StoredObject>(_ type: T.Type, id: String) async throws -> T? {
        guard let body = try await body(T.kind, id: id) else { return nil }
        return try JSONCoding.decode(T.self, from: body)
    }

    /// The object, its row locked until the transaction ends, for a read-modify-write that must
    /// not overwrite a concurrent change.
    /// `known` is the object as the caller last read or wrote it: when the row still holds that
    /// JSON, it is returned without decoding.
    public func getForUpdate<T: StoredObject>(_ type: T.Type, id: String, known: Stored<T>? = nil) async throws -> T? {
        guard let body = try await body(T.kind, id: id, forUpdate: true) else { return nil }
        if let known, known.body == body { return known.object }
        return try JSONCoding.decode(T.self, from: body)
    }

    /// The object with the JSON it is stored as.
    public func getStored<T: StoredObject>(_ type: T.Type, id: String) async throws -> Stored<T>? {
        guard let body = try await body(T.kind, id: id) else { return nil }
        return Stored(try JSONCoding.decode(T.self, from: body), body: body)
    }

    /// The object, or the API's 404 for it.
    public func require<T: StoredObject>(_ type: T.Type, id: String) async throws -> T {
        guard let object = try await get(type, id: id) else { throw DomainError.notFound(T.kind.resourceName, id: id) }
        return object
    }

    /// Whether the object exists, and, for a child, whether it belongs to `parentID`.
    public func exists(_ kind: ObjectKind, id: String, parentID: String? = nil) async throws -> Bool {
        var query: SQLQueryString = "SELECT 1 FROM \(unsafeRaw: kind.rawValue) WHERE id = \(bind: id) AND project = \(bind: project)"
        if let parentID { query += " AND parent_id = \(bind: parentID)" }
        return try await database.raw(query).first() != nil
    }

    @discardableResult
    public func delete(_ kind: ObjectKind, id: String) async throws -> Bool {
        let rows = try await database.raw(
            "DELETE FROM \(unsafeRaw: kind.rawValue) WHERE id = \(bind: id) AND project = \(bind: project) RETURNING id").all()
        return !rows.isEmpty
    }

    /// Deletes every `kind` object whose parent is `parentID`.
    public func deleteChildren(_ kind: ObjectKind, parentID: String) async throws {
        try await database.raw(
            "DELETE FROM \(unsafeRaw: kind.rawValue) WHERE parent_id = \(bind: parentID) AND project = \(bind: project)").run()
    }

    /// Deletes the steps of every run of a thread.
    public func deleteRunSteps(ofThread threadID: String) async throws {
        try await database.raw("""
            DELETE FROM run_steps WHERE project = \(bind: project)
            AND parent_id IN (SELECT id FROM runs WHERE parent_id = \(bind: threadID) AND project = \(bind: project))
            """).run()
    }

    /// One page of a cursor list, in creation order (ascending or descending).
    public func list(_ kind: ObjectKind, parentID: String? = nil, tag: String? = nil, status: String? = nil, page: PageRequest) async throws -> Page {
        var query: SQLQueryString = "SELECT id, body FROM \(unsafeRaw: kind.rawValue) WHERE project = \(bind: project)"
        if let parentID { query += " AND parent_id = \(bind: parentID)" }
        if let tag { query += " AND tag = \(bind: tag)" }
        if let status { query += " AND status = \(bind: status)" }
        // `after` moves along the requested order, `before` against it.
        let forward = page.ascending
        if let after = page.after {
            guard let seq = try await seq(kind, id: after) else { return Page(ids: [], bodies: [], hasMore: false) }
            query += forward ? " AND seq > \(bind: seq)" : " AND seq < \(bind: seq)"
        }
        var reversed = false
        if let before = page.before {
            guard let seq = try await seq(kind, id: before) else { return Page(ids: [], bodies: [], hasMore: false) }
            query += forward ? " AND seq < \(bind: seq)" : " AND seq > \(bind: seq)"
            // The page nearest the cursor: read towards it, then flip.
            reversed = page.after == nil
        }
        let ascending = reversed ? !forward : forward
        query += ascending ? " ORDER BY seq ASC" : " ORDER BY seq DESC"
        query += " LIMIT \(literal: page.limit + 1)"
        let rows = try await database.raw(query).all()
        var ids: [String] = []
        var bodies: [String] = []
        for row in rows.prefix(page.limit) {
            let id = try row.decode(column: "id", as: String.self)
            ids.append(id.split(separator: "/").last.map(String.init) ?? id)
            bodies.append(try row.decode(column: "body", as: String.self))
        }
        if reversed {
            ids.reverse()
            bodies.reverse()
        }
        return Page(ids: ids, bodies: bodies, hasMore: rows.count > page.limit)
    }

    /// Every `T` under `parentID`, oldest first: a thread's messages or a run's steps.
    public func all<T: StoredObject>(_ type: T.Type, parentID: String) async throws -> [T] {
        let rows = try await database.raw("""
            SELECT body FROM \(unsafeRaw: T.kind.rawValue) WHERE parent_id = \(bind: parentID) AND project = \(bind: project) ORDER BY seq ASC
            """).all()
        return try rows.map { try JSONCoding.decode(T.self, from: $0.decode(column: "body", as: String.self)) }
    }

    /// Inserts `object` (a thread's child) only if its thread exists and no run holds it, in one
    /// statement; false when it was not inserted (then `threadState` tells why).
    public func insertIfThreadIdle<T: StoredObject>(_ object: T, threadID: String) async throws -> Bool {
        let body = try JSONCoding.string(object)
        let rows = try await database.raw("""
            INSERT INTO \(unsafeRaw: T.kind.rawValue) (id, project, parent_id, status, tag, created_at, body)
            SELECT \(bind: object.rowID), \(bind: project), \(bind: object.parentID), \(bind: object.indexedStatus), \(bind: object.tag),
                   \(bind: object.created_at), \(bind: body)
            WHERE EXISTS (SELECT 1 FROM threads WHERE id = \(bind: threadID) AND project = \(bind: project))
            AND NOT EXISTS (SELECT 1 FROM runs WHERE parent_id = \(bind: threadID) AND project = \(bind: project)
                            AND status IN (\(binds: Run.Status.active.map(\.rawValue))))
            RETURNING id
            """).all()
        return !rows.isEmpty
    }

    /// Whether a thread exists and whether a run holds it, in one query.
    public enum ThreadState: Sendable {
        case missing, idle
        case busy(runID: String)
    }

    public func threadState(_ threadID: String) async throws -> ThreadState {
        let row = try await database.raw("""
            SELECT t.id AS id, (SELECT r.id FROM runs r WHERE r.parent_id = t.id AND r.project = t.project
                AND r.status IN (\(binds: Run.Status.active.map(\.rawValue))) LIMIT 1) AS run_id
            FROM threads t WHERE t.id = \(bind: threadID) AND t.project = \(bind: project)
            """).first()
        guard let row else { return .missing }
        if let runID = try row.decodeNil(column: "run_id") ? nil : row.decode(column: "run_id", as: String.self) {
            return .busy(runID: runID)
        }
        return .idle
    }

    /// The id of the thread's active run (queued, in_progress, requires_action or cancelling), if any.
    public func activeRunID(threadID: String) async throws -> String? {
        try await database.raw("""
            SELECT id FROM runs WHERE parent_id = \(bind: threadID) AND project = \(bind: project)
            AND status IN (\(binds: Run.Status.active.map(\.rawValue))) LIMIT 1
            """).first()?.decode(column: "id", as: String.self)
    }

    private func seq(_ kind: ObjectKind, id: String) async throws -> Int? {
        try await database.raw("SELECT seq FROM \(unsafeRaw: kind.rawValue) WHERE id = \(bind: id) AND project = \(bind: project)")
            .first()?.decode(column: "seq", as: Int.self)
    }
}
