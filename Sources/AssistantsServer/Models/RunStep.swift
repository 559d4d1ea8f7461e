/// A step of a run (`object: "thread.run.step"`): the creation of a message, or a round of tool calls.
public struct RunStep: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case in_progress, cancelled, failed, completed, expired
    }

    public var id: String
    public var object = "thread.run.step"
    public var created_at: Int
    public var assistant_id: String
    public var thread_id: String
    public var run_id: String
    public var type: String
    public var status: Status
    public var step_details: JSONValue
    @Nullable public var last_error: LastError?
    @Nullable public var expired_at: Int?
    @Nullable public var cancelled_at: Int?
    @Nullable public var failed_at: Int?
    @Nullable public var completed_at: Int?
    @Nullable public var metadata: [String: String]?
    @Nullable public var usage: Usage?

    public init(id: String, created_at: Int, run: Run, type: String, step_details: JSONValue) {
        self.id = id
        self.created_at = created_at
        self.assistant_id = run.assistant_id
        self.thread_id = run.thread_id
        self.run_id = run.id
        self.type = type
        self.status = .in_progress
        self.step_details = step_details
        self.metadata = [:]
    }
}

extension RunStep {
    /// The `include[]` value that asks for file_search result content.
    public static let includeSearchContent = "step_details.tool_calls[*].file_search.results[*].content"

    /// The step as clients see it: file_search results carry their `content` only when asked for.
    public func forClient(includeSearchContent: Bool) -> RunStep {
        guard !includeSearchContent, type == "tool_calls", case .object(var details) = step_details,
              let calls = details["tool_calls"]?.arrayValue, calls.contains(where: { $0["type"]?.stringValue == "file_search" })
        else { return self }
        details["tool_calls"] = .array(calls.map { call in
            guard case .object(var fields) = call, case .object(var search)? = fields["file_search"],
                  let results = search["results"]?.arrayValue else { return call }
            search["results"] = .array(results.map { result in
                guard case .object(var entry) = result else { return result }
                entry["content"] = nil
                return .object(entry)
            })
            fields["file_search"] = .object(search)
            return .object(fields)
        })
        var copy = self
        copy.step_details = .object(details)
        return copy
    }
}
