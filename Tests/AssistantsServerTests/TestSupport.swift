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

    /// A fresh folder for one test, inside this test process's own folder (see `processDirectory`).
    static func temporaryDirectory() -> String {
        let path = processDirectory + "/" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// `assistants-tests-PID-…` under the system's temporary folder, removed when the test process
    /// exits; the start of the next test process removes those of processes that did not exit
    /// (killed by a timeout). Each test's folders and SQLite files used to stay in /tmp for good.
    private static let processDirectory: String = {
        let manager = FileManager.default
        let parent = NSTemporaryDirectory()
        let prefix = "assistants-tests-"
        for name in (try? manager.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = name.dropFirst(prefix.count).split(separator: "-").first.flatMap({ Int32($0) }) else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH { try? manager.removeItem(atPath: parent + name) }
        }
        let path = parent + prefix + "\(getpid())-" + UUID().uuidString.prefix(8)
        try? manager.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestSupport.processDirectory) }
        return path
    }()

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
