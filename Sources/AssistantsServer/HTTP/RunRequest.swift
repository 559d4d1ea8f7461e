import Hummingbird

/// Validation of the run parameters shared by create run and create-thread-and-run,
/// and the run they describe for a given assistant.
struct RunRequest {
    static let createFields: Set<String> = [
        "assistant_id", "model", "reasoning_effort", "instructions", "additional_instructions", "additional_messages",
        "tools", "metadata", "temperature", "top_p", "stream", "max_prompt_tokens", "max_completion_tokens",
        "truncation_strategy", "tool_choice", "parallel_tool_calls", "response_format",
    ]
    static let createAndRunFields: Set<String> = [
        "assistant_id", "thread", "model", "instructions", "tools", "tool_resources", "metadata", "temperature", "top_p",
        "stream", "max_prompt_tokens", "max_completion_tokens", "truncation_strategy", "tool_choice",
        "parallel_tool_calls", "response_format", "reasoning_effort",
    ]

    var assistantID: String
    var stream: Bool
    var model: String?
    var instructions: String?
    var additionalInstructions: String?
    var tools: [JSONValue]?
    var metadata: [String: String]?
    var temperature: Double?
    var topP: Double?
    var maxPromptTokens: Int?
    var maxCompletionTokens: Int?
    var truncation: TruncationStrategy?
    var toolChoice: JSONValue?
    var parallelToolCalls: Bool?
    var responseFormat: JSONValue?
    var reasoningEffort: String?

    init(_ body: JSONRequest, version: APIVersion) throws {
        assistantID = try body.required(body.string("assistant_id"), "assistant_id")
        stream = try body.bool("stream").value ?? false
        model = try body.nonEmptyString("model", maxLength: 256).value
        instructions = try body.string("instructions", maxLength: 256_000).value
        additionalInstructions = try body.string("additional_instructions", maxLength: 256_000).value
        tools = try body.tools(maxItems: 20, version: version).value
        metadata = try body.metadata().value
        temperature = try body.number("temperature", in: 0...2).value
        topP = try body.number("top_p", in: 0...1).value
        maxPromptTokens = try body.integer("max_prompt_tokens", in: 256...Int.max).value
        maxCompletionTokens = try body.integer("max_completion_tokens", in: 256...Int.max).value
        parallelToolCalls = try body.bool("parallel_tool_calls").value
        responseFormat = try body.responseFormat().value
        reasoningEffort = try body.string("reasoning_effort", allowed: ["minimal", "low", "medium", "high"]).value
        if let truncation = try body.object("truncation_strategy").value {
            try truncation.rejectUnknown(allowed: ["type", "last_messages"])
            let type = try truncation.required(truncation.string("type", allowed: ["auto", "last_messages"]), "type")
            let last = try truncation.integer("last_messages", in: 1...Int.max).value
            if type == "last_messages" && last == nil { throw truncation.missing("last_messages") }
            self.truncation = TruncationStrategy(type: type, last_messages: type == "last_messages" ? last : nil)
        }
        toolChoice = try Self.toolChoice(body)
    }

    /// `tool_choice`: none | auto | required, or a named tool.
    static func toolChoice(_ body: JSONRequest) throws -> JSONValue? {
        switch body.raw("tool_choice") {
        case .absent, .null:
            return nil
        case .value(.string(let mode)):
            _ = try body.string("tool_choice", allowed: ["none", "auto", "required"])
            return .string(mode)
        case .value(.object(let fields)):
            let choice = JSONRequest(fields: fields, path: "tool_choice.")
            try choice.rejectUnknown(allowed: ["type", "function"])
            let type = try choice.required(choice.string("type", allowed: ["function", "file_search", "code_interpreter"]), "type")
            if type == "function" {
                let function = try choice.required(choice.object("function"), "function")
                try function.rejectUnknown(allowed: ["name"])
                let name = try function.required(function.string("name"), "name")
                return ["type": "function", "function": ["name": .string(name)]]
            }
            return ["type": .string(type)]
        case .value(let other):
            throw body.typeError("tool_choice", expected: "a string or an object", got: other)
        }
    }

    /// The run this request starts for `assistant` on `threadID`.
    func makeRun(assistant: Assistant, threadID: String, expirySeconds: Int, codeInterpreterUnavailable: String?) throws -> Run {
        let now = unixNow()
        var instructions = self.instructions ?? assistant.instructions ?? ""
        if let additionalInstructions, !additionalInstructions.isEmpty {
            instructions = instructions.isEmpty ? additionalInstructions : instructions + "\n\n" + additionalInstructions
        }
        var run = Run(id: IDPrefix.run.makeID(), created_at: now, thread_id: threadID, assistant_id: assistant.id,
                      model: model ?? assistant.model, instructions: instructions)
        run.expires_at = now + expirySeconds
        run.tools = tools ?? assistant.tools
        for tool in run.tools {
            if tool["type"]?.stringValue == "code_interpreter", let reason = codeInterpreterUnavailable {
                throw APIError.notImplemented("The code_interpreter tool is unavailable on this server: \(reason).")
            }
        }
        if let name = toolChoice?["function"]?["name"]?.stringValue,
           !run.tools.contains(where: { $0["function"]?["name"]?.stringValue == name }) {
            throw APIError.invalidRequest("Invalid 'tool_choice': no function named '\(name)' is among the run's tools.", param: "tool_choice")
        }
        if let type = toolChoice?["type"]?.stringValue, type != "function", !run.tools.contains(where: { $0["type"]?.stringValue == type }) {
            throw APIError.invalidRequest("Invalid 'tool_choice': the run has no \(type) tool.", param: "tool_choice")
        }
        run.metadata = metadata ?? [:]
        run.temperature = temperature ?? assistant.temperature ?? 1
        run.top_p = topP ?? assistant.top_p ?? 1
        run.max_prompt_tokens = maxPromptTokens
        run.max_completion_tokens = maxCompletionTokens
        run.truncation_strategy = truncation ?? run.truncation_strategy
        run.tool_choice = toolChoice ?? "auto"
        run.parallel_tool_calls = parallelToolCalls ?? true
        run.response_format = responseFormat ?? assistant.response_format ?? "auto"
        run.reasoning_effort = reasoningEffort ?? assistant.reasoning_effort
        return run
    }
}
