/// One streamed chunk of an OpenAI-compatible chat completion (`chat.completion.chunk`),
/// or a whole non-streamed completion: both carry `choices` and maybe `usage`.
struct ChatChunk: Decodable, Sendable {
    struct Choice: Decodable, Sendable {
        var delta: Delta?
        var message: Delta?
        var finish_reason: String?
    }

    struct Delta: Decodable, Sendable {
        var content: String?
        var tool_calls: [ToolCallDelta]?
    }

    struct ToolCallDelta: Decodable, Sendable {
        struct Function: Decodable, Sendable {
            var name: String?
            var arguments: String?
        }

        var index: Int?
        var id: String?
        var function: Function?
    }

    struct ChunkUsage: Decodable, Sendable {
        var prompt_tokens: Int?
        var completion_tokens: Int?
    }

    var choices: [Choice]?
    var usage: ChunkUsage?
}

/// What one model call produced, accumulated from its chunks.
struct ChatTurn: Sendable {
    var text = ""
    var toolCalls: [ToolCall] = []
    var finishReason: String?
    var usage: Usage?
}

/// A fragment of a turn as it arrives, for the engine to store and stream.
enum ChatDelta: Sendable {
    case text(String)
    /// A tool call's first fragment (with its id and name) or a later piece of its arguments.
    case toolCall(index: Int, id: String?, name: String?, arguments: String)
}

/// Why a model call failed, in the run's `last_error` vocabulary.
struct UpstreamError: Error, Sendable {
    var code: String
    var message: String
    var retryable: Bool

    var lastError: LastError { LastError(code: code, message: message) }
}
