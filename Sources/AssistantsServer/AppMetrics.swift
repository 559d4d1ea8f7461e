import Foundation
import Metrics

/// The server's own metrics, named and labelled in one place (swift-metrics; `/metrics` renders
/// them for Prometheus). Labels carry statuses, tools, models and upstream hosts: never an API
/// key, a project or an object id.
enum AppMetrics {
    /// A run reached `status`; a terminal one also records how long the run took since its creation.
    static func runTransition(to status: String, createdAt: Int? = nil) {
        Counter(label: "assistants_run_transitions_total", dimensions: [("status", status)]).increment()
        if let createdAt, ["completed", "failed", "cancelled", "expired", "incomplete"].contains(status) {
            Timer(label: "assistants_run_duration_seconds", dimensions: [("status", status)])
                .recordSeconds(Double(max(0, unixNow() - createdAt)))
        }
    }

    /// One model call ended: its route (the upstream's host), outcome, duration and time to first token.
    static func modelCall(route: String, outcome: String, duration: Duration, firstToken: Duration?) {
        Counter(label: "assistants_model_calls_total", dimensions: [("route", route), ("outcome", outcome)]).increment()
        Timer(label: "assistants_model_call_duration_seconds", dimensions: [("route", route)])
            .recordNanoseconds(duration.nanoseconds)
        if let firstToken {
            Timer(label: "assistants_model_time_to_first_token_seconds", dimensions: [("route", route)])
                .recordNanoseconds(firstToken.nanoseconds)
        }
    }

    static func modelRetry(route: String) {
        Counter(label: "assistants_model_retries_total", dimensions: [("route", route)]).increment()
    }

    static func tokens(model: String, prompt: Int, completion: Int) {
        Counter(label: "assistants_model_tokens_total", dimensions: [("model", model), ("direction", "in")]).increment(by: prompt)
        Counter(label: "assistants_model_tokens_total", dimensions: [("model", model), ("direction", "out")]).increment(by: completion)
    }

    /// One server-side tool execution (file_search, code_interpreter).
    static func toolExecution(tool: String, outcome: String, duration: Duration) {
        Counter(label: "assistants_tool_executions_total", dimensions: [("tool", tool), ("outcome", outcome)]).increment()
        Timer(label: "assistants_tool_duration_seconds", dimensions: [("tool", tool)])
            .recordNanoseconds(duration.nanoseconds)
    }

    /// Files waiting for or in ingestion, and how long one took.
    static let ingestionBacklog = Meter(label: "assistants_ingestion_backlog")
    static func ingestion(outcome: String, duration: Duration) {
        Timer(label: "assistants_ingestion_duration_seconds", dimensions: [("outcome", outcome)])
            .recordNanoseconds(duration.nanoseconds)
    }

    /// Server-sent event streams open now.
    static let streamsOpen = Meter(label: "assistants_sse_streams_open")

    /// One SQLite group commit: how many transactions it made durable, and the COMMIT's time (the fsync).
    static func groupCommit(size: Int, commit: Duration) {
        Recorder(label: "assistants_store_group_commit_size").record(size)
        Timer(label: "assistants_store_commit_seconds").recordNanoseconds(commit.nanoseconds)
    }
}

extension Duration {
    /// The whole duration in nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
