import SQLKit

/// Which server process executes a run, for several processes on one database. A run's lease
/// is its (owner, epoch): the node that created it, took its tool outputs or adopted it, and a
/// number that every takeover bumps. Each node writes a heartbeat stamped by the database's
/// clock; a run whose owner has stopped beating is adopted by one live node, which bumps the
/// epoch, so that the old owner, should it wake up, finds its lease gone and writes nothing.
extension ObjectStore {
    /// The database's clock, in Unix seconds: one clock for every node's heartbeats and expiries.
    var databaseNow: SQLQueryString { Self.databaseNow(driver.dialect) }

    static func databaseNow(_ dialect: DatabaseDialect) -> SQLQueryString {
        switch dialect {
        // unixepoch(), not CAST(strftime(...)): SQLite's planner bounds an index range by the former only.
        case .sqlite: "unixepoch()"
        case .postgres: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT)"
        }
    }

    /// Records that `node` is alive now (or was, `secondsAgo`), by the database's clock.
    public func heartbeat(node: String, secondsAgo: Int = 0) async throws {
        try await driver.withTransaction { database in
            try await database.raw("""
                INSERT INTO nodes (id, heartbeat_at) VALUES (\(bind: node), \(databaseNow) - \(bind: secondsAgo))
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

    /// The nodes that beat within the last `timeout` seconds of the database's clock.
    func liveNodes(timeout: Int) -> SQLQueryString { Self.liveNodes(timeout: timeout, dialect: driver.dialect) }

    static func liveNodes(timeout: Int, dialect: DatabaseDialect) -> SQLQueryString {
        "SELECT id FROM nodes WHERE heartbeat_at >= \(databaseNow(dialect)) - \(bind: timeout)"
    }

    /// The runs in `statuses` whose owner is no live node (none, or one silent for `timeout`
    /// seconds); with `includeOwn`, those of `node` too (its previous life). Those `skipping`
    /// names (the runs a task of this node drives) are left out before their bodies are read:
    /// a node with ten thousand runs in flight reads their ids each beat, not ten thousand bodies.
    public func orphanedRuns(withStatus statuses: [Run.Status], node: String, timeout: Int,
                             includeOwn: Bool, skipping: @Sendable (String) -> Bool = { _ in false }) async throws -> [OwnedRun] {
        let own: SQLQueryString = includeOwn ? "OR owner = \(bind: node)" : ""
        let condition: SQLQueryString = """
            status IN (\(binds: statuses.map(\.rawValue)))
            AND (owner IS NULL \(own) OR (owner <> \(bind: node) AND owner NOT IN (\(liveNodes(timeout: timeout)))))
            """
        // Every run in flight, each beat: off the event loops (10,000 ids held one for tens of ms).
        let ids = try await driver.withLongReader { database in
            try await database.raw("SELECT id FROM runs WHERE \(condition) ORDER BY seq").all()
                .map { try $0.decode(column: "id", as: String.self) }
        }.filter { !skipping($0) }
        var orphans: [OwnedRun] = []
        for batch in ids.bindBatches() {
            // Read again under the same condition: the sighting that `adopt` compares is this one.
            orphans += try await runs(where: "id IN (\(binds: Array(batch))) AND \(condition)")
        }
        return orphans
    }

    /// Every active run past its `expires_at` by the database's clock that `node` should end:
    /// its own, and those whose owner is no live node.
    public func runsExpired(node: String, timeout: Int) async throws -> [OwnedRun] {
        try await runs(where: expiredRuns(node: node, timeout: timeout))
    }

    /// The condition of `runsExpired`, which the runs_active_expiry index serves (status, then `expires_at`).
    func expiredRuns(node: String, timeout: Int) -> SQLQueryString {
        """
        status IN (\(binds: Run.Status.active.map(\.rawValue))) AND \(expiresAt) <= \(databaseNow)
        AND (owner IS NULL OR owner = \(bind: node) OR owner NOT IN (\(liveNodes(timeout: timeout))))
        """
    }

    /// The runs `node` owns that a client on some node asked to cancel.
    public func cancellingRuns(ownedBy node: String) async throws -> [OwnedRun] {
        try await runs(where: "status = \(bind: Run.Status.cancelling.rawValue) AND owner = \(bind: node)")
    }

    /// Takes a run over for `node` if its lease and status are still the ones seen (`owner`,
    /// `epoch`, `status`): the new lease, or nil when another node got there first or the run
    /// moved on (its own task recorded `requires_action` after the sighting: resuming it as
    /// `in_progress` would delete its open tool_calls step).
    public func adopt(_ run: OwnedRun, node: String) async throws -> RunLease? {
        let sameOwner: SQLQueryString = if let seen = run.owner { "owner = \(bind: seen)" } else { "owner IS NULL" }
        return try await driver.withTransaction { database in
            guard let row = try await database.raw("""
                UPDATE runs SET owner = \(bind: node), epoch = epoch + 1
                WHERE id = \(bind: run.run.id) AND \(sameOwner) AND epoch = \(bind: run.epoch)
                  AND status = \(bind: run.run.status.rawValue) RETURNING epoch
                """).first() else { return nil }
            return RunLease(runID: run.run.id, project: run.project, owner: node, epoch: try row.decode(column: "epoch", as: Int.self))
        }
    }

    /// How many of `leases` still hold: the leases joined to their runs by id, a lookup in the id
    /// index each. Written as `(id, owner, epoch) IN (VALUES ...)`, SQLite scanned the whole runs
    /// table per batch (130 ms an event loop was held each beat at 10,000 runs in flight).
    static func leasesHolding(_ leases: some Collection<RunLease>) -> SQLQueryString {
        let leased = leases.map { "(\(bind: $0.runID), \(bind: $0.owner), \(bind: $0.epoch))" as SQLQueryString }.joined(separator: ", ")
        return """
            SELECT COUNT(*) AS holding FROM (VALUES \(leased)) AS leased
            JOIN runs ON runs.id = leased.column1 AND runs.owner = leased.column2 AND runs.epoch = leased.column3
            """
    }

    /// Of the leases this node holds, those another node has taken over since (or whose run is
    /// gone). Each batch first counts its leases that still hold, one row back; only a batch
    /// with a lost lease reads its rows.
    public func lostLeases(_ leases: [RunLease]) async throws -> [RunLease] {
        var lost: [RunLease] = []
        for batch in leases.bindBatches() {
            let holding = try await driver.withLongReader { database in
                try await database.raw(Self.leasesHolding(batch)).first()?.decode(column: "holding", as: Int.self) ?? 0
            }
            if holding == batch.count { continue }
            let current = try await driver.withReader { database in
                try await database.raw("SELECT id, owner, epoch FROM runs WHERE id IN (\(binds: batch.map(\.runID)))").all()
            }
            var held: [String: (String?, Int)] = [:]
            for row in current {
                held[try row.decode(column: "id", as: String.self)] =
                    (try row.decode(column: "owner", as: String?.self), try row.decode(column: "epoch", as: Int.self))
            }
            lost += batch.filter { lease in
                guard let (owner, epoch) = held[lease.runID] else { return true }
                return owner != lease.owner || epoch != lease.epoch
            }
        }
        return lost
    }

    /// One write of the engine for a run it holds: the transaction first locks the run's row and
    /// checks the lease. A node whose lease was taken over writes nothing and gets `RunLease.Lost`.
    @discardableResult
    public func write<T: Sendable>(under lease: RunLease, _ body: (StoreSession) async throws -> T) async throws -> T {
        try await write(project: lease.project) { session in
            try await session.check(lease)
            return try await body(session)
        }
    }
}

extension StoreSession {
    /// Makes `node` the owner of a run this transaction wrote (created, or queued again after
    /// tool outputs), bumping its epoch; returns the new lease.
    public func takeOver(run runID: String, for node: String) async throws -> RunLease {
        guard let row = try await database.raw("""
            UPDATE runs SET owner = \(bind: node), epoch = epoch + 1
            WHERE id = \(bind: runID) AND project = \(bind: project) RETURNING epoch
            """).first() else { throw RunLease.Lost(runID: runID) }
        return RunLease(runID: runID, project: project, owner: node, epoch: try row.decode(column: "epoch", as: Int.self))
    }

    /// The run's lease now, read inside this transaction (its row locked by an earlier read for update).
    public func lease(ofRun runID: String) async throws -> (owner: String?, epoch: Int) {
        guard let row = try await database.raw("SELECT owner, epoch FROM runs WHERE id = \(bind: runID) AND project = \(bind: project)")
            .first() else { throw RunLease.Lost(runID: runID) }
        return (try row.decode(column: "owner", as: String?.self), try row.decode(column: "epoch", as: Int.self))
    }

    /// Locks the run's row and throws `RunLease.Lost` unless `lease` still holds it.
    public func check(_ lease: RunLease) async throws {
        let lock: SQLQueryString = dialect == .postgres ? " FOR UPDATE" : ""
        let row = try await database.raw("""
            SELECT owner, epoch FROM runs WHERE id = \(bind: lease.runID) AND project = \(bind: project)\(lock)
            """).first()
        guard let row, try row.decode(column: "owner", as: String?.self) == lease.owner,
              try row.decode(column: "epoch", as: Int.self) == lease.epoch
        else { throw RunLease.Lost(runID: lease.runID) }
    }

    /// Whether `node` beat within the last `timeout` seconds of the database's clock.
    public func isLive(node: String, timeout: Int) async throws -> Bool {
        try await database.raw("SELECT 1 WHERE \(bind: node) IN (\(ObjectStore.liveNodes(timeout: timeout, dialect: dialect)))")
            .first() != nil
    }
}

/// The right of one node to write a run's progress: the run's (owner, epoch) as that node took it.
public struct RunLease: Sendable, Hashable {
    public var runID: String
    public var project: String
    public var owner: String
    public var epoch: Int

    /// Another node took the run over: this node's turn is abandoned and nothing of it is written.
    public struct Lost: Error, CustomStringConvertible {
        public var runID: String
        public var description: String { "run \(runID) is now owned by another node" }
    }
}
