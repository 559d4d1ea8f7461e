import Logging
import SQLKit

/// Word between the nodes sharing one database that a run was asked to stop, so that its owner
/// stops it at once: PostgreSQL `NOTIFY` sent with the transaction that recorded `cancelling`,
/// heard through `LISTEN`. The owner also looks for such runs every second (`cancellingRuns`),
/// which covers a lost connection and SQLite, where one process serves the database.
extension ObjectStore {
    static let cancelChannel = "assistants_run_cancel"

    /// Asks the run's owner, wherever it runs, to stop it (delivered when the transaction commits).
    func signalCancel(of runID: String, session: StoreSession) async throws {
        guard session.dialect == .postgres else { return }
        try await session.database.raw("SELECT pg_notify(\(bind: Self.cancelChannel), \(bind: runID))").run()
    }

    /// Calls `receive` with each run id signalled for cancelling, until the task is cancelled;
    /// a lost connection is retried after a second. Returns at once on SQLite.
    func listenForCancels(logger: Logger, _ receive: @escaping @Sendable (String) async -> Void) async {
        guard let postgres = driver as? PostgresDriver else { return }
        while !Task.isCancelled {
            do {
                try await postgres.listen(channel: Self.cancelChannel, receive)
            } catch {
                if Task.isCancelled { return }
                logger.warning("listening for cancels failed; polling covers it until it is back", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
