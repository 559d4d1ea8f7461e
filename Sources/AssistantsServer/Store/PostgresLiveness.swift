import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// Watches whether PostgreSQL answers, over a connection of its own (so a busy pool never looks
/// like a dead database): `SELECT 1` every second, reconnecting when the connection breaks. It
/// reports each change (alive or not, and why) to `PostgresDriver`, which fails work fast while
/// the database is gone and takes a fresh pool when it is back. A failing query in the pool makes
/// it look at once instead of at its next beat.
final class PostgresLiveness: Sendable {
    static let connectTimeout: Duration = .seconds(2)
    static let queryTimeout: Duration = .seconds(3)
    /// Between probes while the database answers, and while it does not.
    static let interval: Duration = .seconds(1)
    static let downInterval: Duration = .milliseconds(250)

    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let wanted = NIOLockedValueBox(false)
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(configuration: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts probing; `report(alive, reason)` is called on every change, the database first
    /// assumed alive.
    func start(_ report: @escaping @Sendable (_ alive: Bool, _ reason: String) -> Void) {
        let probing = Task { [self] in
            var connection: PostgresConnection?
            var alive = true
            while !Task.isCancelled {
                let failure = await probe(&connection)
                if (failure == nil) != alive {
                    alive = failure == nil
                    report(alive, failure ?? "")
                }
                await pause(alive ? Self.interval : Self.downInterval)
            }
            try? await connection?.close()
        }
        task.withLockedValue { $0 = probing }
    }

    /// Asks for a probe now (a query in the pool failed as if the database were gone).
    func probeNow() {
        wanted.withLockedValue { $0 = true }
    }

    func stop() {
        task.withLockedValue { $0 }?.cancel()
    }

    /// Sleeps for `duration`, or less when `probeNow` is called meanwhile.
    private func pause(_ duration: Duration) async {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline, !Task.isCancelled {
            if wanted.withLockedValue({ value in defer { value = false }; return value }) { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// nil when the database answered `SELECT 1`, else why not.
    private func probe(_ connection: inout PostgresConnection?) async -> String? {
        if let open = connection {
            if await select(on: open) == nil { return nil }
            try? await open.close()
            connection = nil
        }
        do {
            let open = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            if let failure = await select(on: open) {
                try? await open.close()
                return failure
            }
            connection = open
            return nil
        } catch let error as PSQLError where error.code == .server && !["57P01", "57P02", "57P03"].contains(error.serverInfo?[.sqlState] ?? "") {
            // PostgreSQL answered (too many connections, say): it is there, and the pool's
            // connections, which are already open, are left to serve.
            return nil
        } catch {
            return StoreError.unavailabilityReason(error) ?? "\(String(reflecting: error))"
        }
    }

    /// `SELECT 1` within `queryTimeout` (past it the connection is closed). The query is raced,
    /// not awaited: PostgresNIO never completes a query written to a connection that closed
    /// meanwhile, so waiting for it could hold the probe forever.
    private func select(on connection: PostgresConnection) async -> String? {
        if connection.isClosed { return "the connection to the database was closed" }
        let pending = NIOLockedValueBox<CheckedContinuation<String?, Never>?>(nil)
        let finish: @Sendable (String?) -> Void = { outcome in
            pending.withLockedValue { continuation in
                defer { continuation = nil }
                return continuation
            }?.resume(returning: outcome)
        }
        let logger = self.logger
        return await withCheckedContinuation { continuation in
            pending.withLockedValue { $0 = continuation }
            let timer = Task {
                try await Task.sleep(for: Self.queryTimeout)
                finish("the database did not answer SELECT 1 within \(Self.queryTimeout.components.seconds) s")
                try? await connection.close()
            }
            Task {
                do {
                    let rows = try await connection.query("SELECT 1", logger: logger)
                    for try await _ in rows {}
                    timer.cancel()
                    finish(nil)
                } catch {
                    timer.cancel()
                    finish(StoreError.unavailabilityReason(error) ?? "\(String(reflecting: error))")
                }
            }
        }
    }
}
