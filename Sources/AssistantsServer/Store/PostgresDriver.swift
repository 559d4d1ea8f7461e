import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresKit
import PostgresNIO
import SQLKit

/// PostgreSQL, for deployments that outgrow one machine: a pooled `PostgresClient`, watched by a
/// `PostgresLiveness` probe so that losing the database fails requests at once with
/// `StoreError.unavailable` (instead of queueing them in the pool for its one-minute circuit
/// breaker), and a fresh pool (no stale backoff) serves again as soon as the database is back.
public final class PostgresDriver: DatabaseDriver {
    public let dialect = DatabaseDialect.postgres
    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let state: NIOLockedValueBox<PoolState>
    private let liveness: PostgresLiveness

    /// The pool in use, or why there is none.
    private enum PoolState {
        case up(PostgresClient, Task<Void, Never>)
        case down(reason: String)
        case shutDown
    }

    private init(configuration: PostgresClient.Configuration, probe: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.state = NIOLockedValueBox(.down(reason: "not connected yet"))
        self.liveness = PostgresLiveness(configuration: probe, logger: logger)
        bringUp()
        liveness.start { [weak self] alive, reason in
            guard let self else { return }
            if alive { self.bringUp() } else { self.takeDown(reason: reason) }
        }
    }

    /// Connects to `postgres://user:pass@host:port/db`.
    public static func connect(url: String, logger: Logger) async throws -> PostgresDriver {
        guard let components = URLComponents(string: url), let host = components.host else {
            throw ConfigurationError("invalid PostgreSQL URL: \(url)")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let port = components.port ?? 5432
        let username = components.user ?? "postgres"
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: components.password,
            database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.maximumConnections = 20
        configuration.options.connectTimeout = PostgresLiveness.connectTimeout
        var probe = PostgresConnection.Configuration(host: host, port: port, username: username, password: components.password,
                                                     database: database.isEmpty ? nil : database, tls: .disable)
        probe.options.connectTimeout = .seconds(PostgresLiveness.connectTimeout.components.seconds)
        let driver = PostgresDriver(configuration: configuration, probe: probe, logger: logger)
        do {
            try await driver.withReader { try await $0.raw("SELECT 1").run() }
        } catch {
            await driver.shutdown()
            throw error
        }
        return driver
    }

    /// A fresh pool, unless one is up already (or the driver was shut down).
    private func bringUp() {
        let previous = state.withLockedValue { state -> String? in
            guard case .down(let reason) = state else { return nil }
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            state = .up(client, Task { await client.run() })
            return reason
        }
        if let previous, previous != "not connected yet" {
            logger.notice("the database answers again; serving with a new connection pool", metadata: ["was": "\(previous)"])
        }
    }

    /// Drops the pool: what waits in it for a connection fails now (`poolClosed`), and new work
    /// fails at once until the probe reaches the database again.
    private func takeDown(reason: String) {
        let task = state.withLockedValue { state -> Task<Void, Never>? in
            guard case .up(_, let task) = state else { return nil }
            state = .down(reason: reason)
            return task
        }
        if let task {
            logger.error("the database is unavailable; failing requests with 503 until it answers again", metadata: ["reason": "\(reason)"])
            task.cancel()
        }
    }

    /// Why the database is out of reach now, or nil while the driver thinks it is there.
    public var unavailableReason: String? {
        state.withLockedValue { state in
            switch state {
            case .up: nil
            case .down(let reason): reason
            case .shutDown: "the server is shutting down"
            }
        }
    }

    private func client() throws -> PostgresClient {
        try state.withLockedValue { state in
            switch state {
            case .up(let client, _): return client
            case .down(let reason): throw StoreError.unavailable(reason: reason)
            case .shutDown: throw StoreError.unavailable(reason: "the server is shutting down")
            }
        }
    }

    /// Leases a connection for `body`; errors that mean the database is gone come out as
    /// `StoreError.unavailable` and make the probe look now rather than at its next beat.
    private func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let client = try client()
        do {
            return try await client.withConnection { try await body($0) }
        } catch {
            let classified = StoreError.classify(error)
            if classified is StoreError { liveness.probeNow() }
            throw classified
        }
    }

    public func withReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await body(connection.sql(queryLogLevel: nil))
        }
    }

    public func withTransaction<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await transaction(on: connection.sql(queryLogLevel: nil), body)
        }
    }

    /// Hands `receive` the payload of each `NOTIFY` on `channel`, on a connection of the pool held
    /// for as long as this listens: until the task is cancelled, or the connection (or the
    /// database) is lost, which throws (`StoreError.unavailable`); the caller listens again.
    public func listen(channel: String, _ receive: @escaping @Sendable (String) async -> Void) async throws {
        try await withConnection { connection in
            try await connection.listen(on: channel) { notifications in
                for try await notification in notifications {
                    await receive(notification.payload)
                }
            }
        }
    }

    public func shutdown() async {
        liveness.stop()
        let task = state.withLockedValue { state -> Task<Void, Never>? in
            defer { state = .shutDown }
            if case .up(_, let task) = state { return task }
            return nil
        }
        task?.cancel()
    }
}
