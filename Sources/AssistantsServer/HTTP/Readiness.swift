import Hummingbird

/// `GET /ready`: 200 once start-up recovery has finished and while the database answers (within
/// 2 s); 503 with the reason otherwise. `/health` stays a liveness check that needs neither.
enum Readiness {
    static let databaseTimeout: Duration = .seconds(2)

    static func check(store: ObjectStore, engine: RunEngine) async throws -> Response {
        guard engine.hasRecovered else {
            return answer(ready: false, reason: "start-up recovery of the runs left by the last process has not finished")
        }
        if let reason = (store.driver as? PostgresDriver)?.unavailableReason {
            return answer(ready: false, reason: "the database is unavailable: \(reason)")
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await store.read(project: ProjectKeys.defaultProject) { try await $0.exists(.assistant, id: "ready-probe") }
                }
                group.addTask {
                    try await Task.sleep(for: databaseTimeout)
                    throw ReadinessTimeout()
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            return answer(ready: false, reason: error is ReadinessTimeout
                ? "the database did not answer within \(databaseTimeout.components.seconds) s"
                : error is StoreError ? "\(error)" : "the database does not answer: \(error)")
        }
        return answer(ready: true, reason: nil)
    }

    private struct ReadinessTimeout: Error {}

    private static func answer(ready: Bool, reason: String?) -> Response {
        var body: [String: JSONValue] = ["status": .string(ready ? "ready" : "unavailable")]
        if let reason { body["reason"] = .string(reason) }
        return .json(JSONValue.object(body).jsonString, status: ready ? .ok : .serviceUnavailable)
    }
}
