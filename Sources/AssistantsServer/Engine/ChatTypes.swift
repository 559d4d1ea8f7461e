/// One streamed chunk of an OpenAI-compatible chat completion (`chat.completion.chunk`),
/// or a whole non-streamed completion: both carry `choices` and maybe `usage`.
struct ChatChunk: Sendable, Equatable {
    struct Choice: Sendable, Equatable {
        var delta: Delta? = nil
        var message: Delta? = nil
        var finish_reason: String? = nil
    }

    struct Delta: Sendable, Equatable {
        var content: String? = nil
        var tool_calls: [ToolCallDelta]? = nil
    }

    struct ToolCallDelta: Sendable, Equatable {
        struct Function: Sendable, Equatable {
            var name: String? = nil
            var arguments: String? = nil
        }

        var index: Int? = nil
        var id: String? = nil
        var function: Function? = nil
    }

    struct ChunkUsage: Sendable, Equatable {
        var prompt_tokens: Int? = nil
        var completion_tokens: Int? = nil
    }

    var choices: [Choice]?
    var usage: ChunkUsage?

    /// Why a chunk could not be read: its JSON is not shaped like a chat completion.
    struct Malformed: Error {}

    /// Reads a chunk from its JSON text. Absent and null fields are nil; a field of the wrong
    /// type makes the chunk malformed, as a strict decoder would.
    init(parsing text: some Collection<UInt8>) throws {
        if let chunk = text.withContiguousStorageIfAvailable(Self.read) ?? nil {
            self = chunk
        } else {
            try self.init(json: JSONText.parse(String(decoding: text, as: UTF8.self)))
        }
    }

    init(json: JSONValue) throws {
        guard case .object(let fields) = json else { throw Malformed() }
        choices = try Self.optional(fields["choices"]) { value in
            guard case .array(let items) = value else { throw Malformed() }
            return try items.map { item in
                guard case .object(let choice) = item else { throw Malformed() }
                return Choice(delta: try Self.optional(choice["delta"], Self.delta),
                              message: try Self.optional(choice["message"], Self.delta),
                              finish_reason: try Self.optional(choice["finish_reason"], Self.string))
            }
        }
        usage = try Self.optional(fields["usage"]) { value in
            guard case .object(let usage) = value else { throw Malformed() }
            return ChunkUsage(prompt_tokens: try Self.optional(usage["prompt_tokens"], Self.int),
                              completion_tokens: try Self.optional(usage["completion_tokens"], Self.int))
        }
    }

    private static func optional<T>(_ value: JSONValue?, _ read: (JSONValue) throws -> T) throws -> T? {
        guard let value, value != .null else { return nil }
        return try read(value)
    }

    private static func string(_ value: JSONValue) throws -> String {
        guard case .string(let text) = value else { throw Malformed() }
        return text
    }

    private static func int(_ value: JSONValue) throws -> Int {
        guard case .int(let number) = value else { throw Malformed() }
        return number
    }

    private static func delta(_ value: JSONValue) throws -> Delta {
        guard case .object(let fields) = value else { throw Malformed() }
        return Delta(content: try optional(fields["content"], string), tool_calls: try optional(fields["tool_calls"]) { calls in
            guard case .array(let items) = calls else { throw Malformed() }
            return try items.map { item in
                guard case .object(let call) = item else { throw Malformed() }
                let function = try optional(call["function"]) { value -> ToolCallDelta.Function in
                    guard case .object(let function) = value else { throw Malformed() }
                    return .init(name: try optional(function["name"], string), arguments: try optional(function["arguments"], string))
                }
                return ToolCallDelta(index: try optional(call["index"], int), id: try optional(call["id"], string), function: function)
            }
        })
    }
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
    /// How long the upstream asked to wait before a retry (`Retry-After` on 429 and 503).
    var retryAfter: Duration? = nil

    var lastError: LastError { LastError(code: code, message: message) }
}
