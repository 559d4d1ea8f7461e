import Foundation
import Logging
import PostgresKit
import PostgresNIO
import SQLKit

/// PostgreSQL, for deployments that outgrow one machine: a pooled `PostgresClient`.
public final class PostgresDriver: DatabaseDriver {
    public let dialect = DatabaseDialect.postgres
    private let client: PostgresClient
    private let runTask: Task<Void, Never>

    private init(client: PostgresClient) {
        self.client = client
        self.runTask = Task { await client.run() }
    }

    /// Connects to `postgres://user:pass@host:port/db`.
    public static func connect(url: String, logger: Logger) async throws -> PostgresDriver {
        guard let components = URLComponents(string: url), let host = components.host else {
            throw ConfigurationError("invalid PostgreSQL URL: \(url)")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432,
            username: components.user ?? "postgres", password: components.password,
            database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.maximumConnections = 20
        let driver = PostgresDriver(client: PostgresClient(configuration: configuration, backgroundLogger: logger))
        try await driver.withReader { try await $0.raw("SELECT 1").run() }
        return driver
    }

    public func withReader<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await body(connection.sql(queryLogLevel: nil))
        }
    }

    public func withTransaction<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            try await transaction(on: connection.sql(queryLogLevel: nil), body)
        }
    }

    public func shutdown() async {
        runTask.cancel()
    }
}
