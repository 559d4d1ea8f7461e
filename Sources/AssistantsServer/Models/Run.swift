/// A run (`object: "thread.run"`): one execution of an assistant on a thread.
public struct Run: Codable, Sendable {
    /// The states of the run state machine (NOTES.md §6).
    public enum Status: String, Codable, Sendable, CaseIterable {
        case queued, in_progress, requires_action, cancelling, cancelled, failed, completed, incomplete, expired

        /// A run in one of these holds its thread: no new run or message until it ends.
        public static let active: [Status] = [.queued, .in_progress, .requires_action, .cancelling]

        public var isTerminal: Bool { !Self.active.contains(self) }
    }

    public var id: String
    public var object = "thread.run"
    public var created_at: Int
    public var thread_id: String
    public var assistant_id: String
    public var status: Status
    @Nullable public var required_action: RequiredAction?
    @Nullable public var last_error: LastError?
    @Nullable public var expires_at: Int?
    @Nullable public var started_at: Int?
    @Nullable public var cancelled_at: Int?
    @Nullable public var failed_at: Int?
    @Nullable public var completed_at: Int?
    @Nullable public var incomplete_details: IncompleteDetails?
    public var model: String
    public var instructions: String
    public var tools: [JSONValue]
    @Nullable public var metadata: [String: String]?
    @Nullable public var usage: Usage?
    @Nullable public var temperature: Double?
    @Nullable public var top_p: Double?
    @Nullable public var max_prompt_tokens: Int?
    @Nullable public var max_completion_tokens: Int?
    public var truncation_strategy: TruncationStrategy
    public var tool_choice: JSONValue
    public var parallel_tool_calls: Bool
    @Nullable public var response_format: JSONValue?
    @Nullable public var reasoning_effort: String?

    public init(id: String, created_at: Int, thread_id: String, assistant_id: String, model: String, instructions: String) {
        self.id = id
        self.created_at = created_at
        self.thread_id = thread_id
        self.assistant_id = assistant_id
        self.status = .queued
        self.model = model
        self.instructions = instructions
        self.tools = []
        self.metadata = [:]
        self.temperature = 1
        self.top_p = 1
        self.truncation_strategy = TruncationStrategy(type: "auto", last_messages: nil)
        self.tool_choice = "auto"
        self.parallel_tool_calls = true
        self.response_format = "auto"
    }
}

/// What a run waits for in `requires_action`: the client's outputs for these function calls.
public struct RequiredAction: Codable, Sendable {
    public struct SubmitToolOutputs: Codable, Sendable {
        public var tool_calls: [ToolCall]
    }

    public var type = "submit_tool_outputs"
    public var submit_tool_outputs: SubmitToolOutputs

    public init(toolCalls: [ToolCall]) {
        self.submit_tool_outputs = SubmitToolOutputs(tool_calls: toolCalls)
    }
}

/// A function call the model made: `{id, type: "function", function: {name, arguments}}`.
public struct ToolCall: Codable, Sendable, Equatable {
    public struct Function: Codable, Sendable, Equatable {
        public var name: String
        public var arguments: String
    }

    public var id: String
    public var type = "function"
    public var function: Function

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.function = Function(name: name, arguments: arguments)
    }
}

/// The error that ended a run or step: `{code, message}`.
public struct LastError: Codable, Sendable, Error {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// Token counts of a run or step.
public struct Usage: Codable, Sendable, Equatable {
    public var prompt_tokens: Int
    public var completion_tokens: Int
    public var total_tokens: Int

    public init(prompt_tokens: Int = 0, completion_tokens: Int = 0) {
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.total_tokens = prompt_tokens + completion_tokens
    }

    public static func + (lhs: Usage, rhs: Usage) -> Usage {
        Usage(prompt_tokens: lhs.prompt_tokens + rhs.prompt_tokens, completion_tokens: lhs.completion_tokens + rhs.completion_tokens)
    }
}

/// How the thread is cut to fit the model: `auto` or the `last_messages` newest.
public struct TruncationStrategy: Codable, Sendable {
    public var type: String
    @Nullable public var last_messages: Int?

    public init(type: String, last_messages: Int?) {
        self.type = type
        self.last_messages = last_messages
    }
}

extension Run {
    /// The engine took the run up: `in_progress`, started at `now` unless it had started before.
    mutating func markStarted(at now: Int) {
        status = .in_progress
        if started_at == nil { started_at = now }
    }
}
