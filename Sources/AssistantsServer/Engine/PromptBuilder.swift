/// Builds the chat-completions `messages` of a model call: the run's instructions as the system
/// prompt, the thread's messages (truncated per `truncation_strategy` and the token budgets),
/// then this run's tool calls with their outputs.
struct PromptBuilder {
    /// The prompt, and whether it had to drop all but the newest message and still did not fit.
    struct Prompt {
        var messages: [JSONValue]
        var estimatedTokens: Int
        var overBudget: Bool
    }

    /// A rough token count: about four bytes of UTF-8 a token, plus a little for each message's framing.
    static func estimateTokens(_ text: String) -> Int {
        text.utf8.count / 4 + 4
    }

    /// `images`: what the thread's image parts become (none: messages are sent as plain text).
    static func build(run: Run, threadMessages: [Message], steps: [RunStep], contextWindow: Int,
                      images: PromptImages? = nil, vision: Bool = true) -> Prompt {
        var system: [JSONValue] = []
        var fixedTokens = 0
        if !run.instructions.isEmpty {
            system.append(["role": "system", "content": .string(run.instructions)])
            fixedTokens += estimateTokens(run.instructions)
        }
        var toolMessages: [JSONValue] = []
        var sourceCount = 0
        for step in steps where step.type == "tool_calls" && step.status == .completed {
            let calls = (step.step_details["tool_calls"]?.arrayValue ?? []).filter {
                ["function", FileSearchTool.name, CodeInterpreterTool.name].contains($0["type"]?.stringValue ?? "")
            }
            guard !calls.isEmpty else { continue }
            toolMessages.append([
                "role": "assistant",
                "content": .null,
                "tool_calls": .array(calls.map { call in
                    let type = call["type"]?.stringValue ?? "function"
                    let name: JSONValue = type == "function" ? (call["function"]?["name"] ?? "") : .string(type)
                    let arguments: JSONValue = switch type {
                    case "function": call["function"]?["arguments"] ?? "{}"
                    case CodeInterpreterTool.name: .string((["code": call["code_interpreter"]?["input"] ?? ""] as JSONValue).jsonString)
                    default: "{}"
                    }
                    return ["id": call["id"] ?? "", "type": "function", "function": ["name": name, "arguments": arguments]]
                }),
            ])
            for call in calls {
                let output: String
                if call["type"]?.stringValue == "function" {
                    output = call["function"]?["output"]?.stringValue ?? ""
                    fixedTokens += estimateTokens(call["function"]?["arguments"]?.stringValue ?? "")
                } else if call["type"]?.stringValue == CodeInterpreterTool.name {
                    output = CodeInterpreterTool.toolOutput(call)
                    fixedTokens += estimateTokens(call["code_interpreter"]?["input"]?.stringValue ?? "")
                } else {
                    output = FileSearchTool.toolOutput(call, firstSource: sourceCount)
                    sourceCount += call["file_search"]?["results"]?.arrayValue?.count ?? 0
                }
                toolMessages.append(["role": "tool", "tool_call_id": call["id"] ?? "", "content": .string(output)])
                fixedTokens += estimateTokens(output)
            }
        }

        // The thread as the model sees it: finished messages only (not this run's reply in progress).
        var history = threadMessages.filter { $0.status != .in_progress }
        if run.truncation_strategy.type == "last_messages", let count = run.truncation_strategy.last_messages {
            history = Array(history.suffix(max(count, 0)))
        }
        var budget = contextWindow - (run.max_completion_tokens ?? min(4096, contextWindow / 4))
        if let maxPrompt = run.max_prompt_tokens { budget = min(budget, maxPrompt) }
        var tokens = history.map { estimateTokens($0.plainText) }
        var total = fixedTokens + tokens.reduce(0, +)
        // `auto`: drop the oldest messages until the prompt fits, keeping at least the newest.
        while total > budget && history.count > 1 {
            total -= tokens.removeFirst()
            history.removeFirst()
        }
        let chat: [JSONValue] = history.map { message in
            ["role": .string(message.role), "content": images?.content(of: message, vision: vision) ?? .string(message.plainText)]
        }
        return Prompt(messages: system + chat + toolMessages, estimatedTokens: total, overBudget: total > budget)
    }
}
