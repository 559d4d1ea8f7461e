import SQLKit

/// Which server process executes a run, for several processes on one database: each run names
/// its owner (the node that created it, took its tool outputs or adopted it), each node writes a
/// heartbeat, and a run whose owner has stopped beating is adopted by a live node, once.
extension ObjectStore {
    /// Records that `node` is alive at `now`.
    public func heartbeat(node: String, at now: Int) async throws {
        try await driver.withTransaction { database in
            try await database.raw("""
                INSERT INTO nodes (id, heartbeat_at) VALUES (\(bind: node), \(bind: now))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
                """).run()
        }
    }

    /// Forgets `node` (a clean shutdown), so that live nodes adopt its runs without waiting.
    public func removeNode(_ node: String) async throws {
        try await driver.withTransaction { database in
            try await database.raw("DELETE FROM nodes WHERE id = \(bind: node)").run()
        }
    }

    /// The runs in `statuses` whose owner is no live node: none, or one whose last heartbeat is
    /// older than `liveSince`; with `includeOwn`, those of `node` too (its previous life).
    public func orphanedRuns(withStatus statuses: [Run.Status], node: String, liveSince: Int,
                             includeOwn: Bool) async throws -> [OwnedRun] {
        let own: SQLQueryString = includeOwn ? "OR owner = \(bind: node)" : ""
        return try await runs(where: """
            status IN (\(binds: statuses.map(\.rawValue)))
            AND (owner IS NULL \(own) OR (owner <> \(bind: node)
                 AND owner NOT IN (SELECT id FROM nodes WHERE heartbeat_at >= \(bind: liveSince))))
            """)
    }

    /// Makes `node` the run's owner if its owner is still `seen`; false when another node got there first.
    public func adopt(runID: String, from seen: String?, node: String) async throws -> Bool {
        let sameOwner: SQLQueryString = if let seen { "owner = \(bind: seen)" } else { "owner IS NULL" }
        return try await driver.withTransaction { database in
            try await database.raw("UPDATE runs SET owner = \(bind: node) WHERE id = \(bind: runID) AND \(sameOwner) RETURNING id")
                .first() != nil
        }
    }
}

extension StoreSession {
    /// Makes `node` the owner of a run this transaction wrote (created, or queued again).
    public func setOwner(ofRun runID: String, to node: String) async throws {
        try await database.raw("UPDATE runs SET owner = \(bind: node) WHERE id = \(bind: runID) AND project = \(bind: project)").run()
    }
}
