import Foundation
import Logging
@testable import AssistantsServer

/// Shared helpers: temporary folders, the databases the store suite runs against.
enum TestSupport {
    static let logger: Logger = {
        var logger = Logger(label: "tests")
        logger.logLevel = .warning
        return logger
    }()

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "assistants-tests-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The databases the store suite runs against: SQLite, and PostgreSQL when
    /// `ASSISTANTS_TEST_POSTGRES_URL` names one (CI sets it).
    static var databases: [String] {
        postgresURL == nil ? ["sqlite"] : ["sqlite", "postgres"]
    }

    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["ASSISTANTS_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A URL for a test: a fresh SQLite file each time, or the shared PostgreSQL database.
    static func databaseURL(_ database: String) -> String {
        database == "postgres" ? (postgresURL ?? "") : "sqlite://" + temporaryDirectory() + "/store.sqlite"
    }

    /// A project name no other test run uses, so tests can share one PostgreSQL database.
    static func uniqueProject() -> String {
        "test-" + UUID().uuidString
    }
}
