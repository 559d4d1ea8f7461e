import Foundation
import Metrics
import NIOConcurrencyHelpers

/// The server's own metrics, named and labelled in one place (swift-metrics; `/metrics` renders
/// them for Prometheus). Labels carry statuses, tools, models and upstream hosts: never an API
/// key, a project or an object id.
enum AppMetrics {
    /// A run reached `status`; a terminal one also records how long the run took since its creation.
    static func runTransition(to status: String, createdAt: Int? = nil) {
        counter("assistants_run_transitions_total", dimensions: [("status", status)]).increment()
        if let createdAt, ["completed", "failed", "cancelled", "expired", "incomplete"].contains(status) {
            timer("assistants_run_duration_seconds", dimensions: [("status", status)])
                .recordSeconds(Double(max(0, unixNow() - createdAt)))
        }
    }

    /// One model call ended: its route (the upstream's host), outcome, duration and time to first token.
    static func modelCall(route: String, outcome: String, duration: Duration, firstToken: Duration?) {
        counter("assistants_model_calls_total", dimensions: [("route", route), ("outcome", outcome)]).increment()
        timer("assistants_model_call_duration_seconds", dimensions: [("route", route)])
            .recordNanoseconds(duration.nanoseconds)
        if let firstToken {
            timer("assistants_model_time_to_first_token_seconds", dimensions: [("route", route)])
                .recordNanoseconds(firstToken.nanoseconds)
        }
    }

    static func modelRetry(route: String) {
        counter("assistants_model_retries_total", dimensions: [("route", route)]).increment()
    }

    /// Model names come from clients: past this many distinct ones, the rest count as `other`,
    /// so a client cannot grow the metrics without bound.
    static let maxModelLabels = 64
    private static let modelLabels = NIOLockedValueBox(Set<String>())

    static func tokens(model: String, prompt: Int, completion: Int) {
        let model = modelLabels.withLockedValue { seen -> String in
            if seen.contains(model) { return model }
            guard seen.count < maxModelLabels else { return "other" }
            seen.insert(model)
            return model
        }
        counter("assistants_model_tokens_total", dimensions: [("model", model), ("direction", "in")]).increment(by: prompt)
        counter("assistants_model_tokens_total", dimensions: [("model", model), ("direction", "out")]).increment(by: completion)
    }

    /// One server-side tool execution (file_search, code_interpreter).
    static func toolExecution(tool: String, outcome: String, duration: Duration) {
        counter("assistants_tool_executions_total", dimensions: [("tool", tool), ("outcome", outcome)]).increment()
        timer("assistants_tool_duration_seconds", dimensions: [("tool", tool)])
            .recordNanoseconds(duration.nanoseconds)
    }

    /// How long a new run waited for its event loop to catch up before starting (`RunAdmission`).
    static func runAdmissionWait(nanoseconds: Int64) {
        timer("assistants_run_admission_wait_seconds").recordNanoseconds(nanoseconds)
    }

    /// How late an event loop ran a tick it had scheduled: the time it was held by other work.
    static func eventLoopLag(loop: Int, nanoseconds: Int64) {
        timer("assistants_event_loop_lag_seconds", dimensions: [("loop", "\(loop)")]).recordNanoseconds(nanoseconds)
    }

    /// Files waiting for or in ingestion, and how long one took.
    static let ingestionBacklog = Meter(label: "assistants_ingestion_backlog")
    static func ingestion(outcome: String, duration: Duration) {
        timer("assistants_ingestion_duration_seconds", dimensions: [("outcome", outcome)])
            .recordNanoseconds(duration.nanoseconds)
    }

    /// Server-sent event streams open now.
    static let streamsOpen = Meter(label: "assistants_sse_streams_open")

    /// One SQLite group commit: how many transactions it made durable, and the COMMIT's time (the fsync).
    static func groupCommit(size: Int, commit: Duration) {
        recorder("assistants_store_group_commit_size").record(size)
        timer("assistants_store_commit_seconds").recordNanoseconds(commit.nanoseconds)
    }
}

extension AppMetrics {
    /// One HTTP request answered.
    static func httpRequest(route: String, method: String, status: Int, duration: Duration) {
        let dimensions = [("http.route", route), ("http.request.method", method), ("http.response.status_code", String(status))]
        counter("hb.requests", dimensions: dimensions).increment()
        timer("http.server.request.duration", dimensions: dimensions).recordNanoseconds(duration.nanoseconds)
    }

    /// Metric handles by label and dimensions: made once, then found under a lock.
    private static let handles = NIOLockedValueBox([String: any Sendable]())

    private static func cached<T: Sendable>(_ label: String, _ dimensions: [(String, String)], make: () -> T) -> T {
        var key = label
        for (name, value) in dimensions { key += "\u{1}" + name + "=" + value }
        return handles.withLockedValue { table in
            if let hit = table[key] as? T { return hit }
            let made = make()
            table[key] = made
            return made
        }
    }

    static func counter(_ label: String, dimensions: [(String, String)] = []) -> Counter {
        cached(label, dimensions) { Counter(label: label, dimensions: dimensions) }
    }

    static func timer(_ label: String, dimensions: [(String, String)] = []) -> Metrics.Timer {
        cached(label, dimensions) { Metrics.Timer(label: label, dimensions: dimensions) }
    }

    static func recorder(_ label: String, dimensions: [(String, String)] = []) -> Recorder {
        cached(label, dimensions) { Recorder(label: label, dimensions: dimensions) }
    }
}

extension Duration {
    /// The whole duration in nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
