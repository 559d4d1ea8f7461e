extension ChatChunk {
    /// Reads a chunk from its JSON text in place (`JSONText.Reader`), without the `JSONValue`
    /// tree `init(json:)` reads: every streamed token comes as one. Nil when the text is anything
    /// but a well-formed chunk, or carries an `error`: the caller then reads it through the tree,
    /// which gives the same chunk, or says what is wrong with it.
    static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> ChatChunk? {
        var reader = JSONText.Reader(bytes)
        do {
            let chunk = try chunk(&reader)
            try reader.end()
            return chunk
        } catch {
            return nil
        }
    }

    /// The fast reading gives up: the text is to be read through the tree.
    private struct Unread: Error {}

    private init() {}

    private static func chunk(_ reader: inout JSONText.Reader) throws -> ChatChunk {
        guard try reader.object() else { throw Unread() }
        var chunk = ChatChunk()
        var first = true
        while let key = try reader.key(first: &first) {
            switch key {
            case "choices": chunk.choices = try optional(&reader) { try list(&$0, choice) }
            case "usage": chunk.usage = try optional(&reader, usage)
            case "error": throw Unread()
            default: try reader.skip()
            }
        }
        return chunk
    }

    private static func choice(_ reader: inout JSONText.Reader) throws -> Choice {
        guard try reader.object() else { throw Unread() }
        var choice = Choice()
        var first = true
        while let key = try reader.key(first: &first) {
            switch key {
            case "delta": choice.delta = try optional(&reader, delta)
            case "message": choice.message = try optional(&reader, delta)
            case "finish_reason": choice.finish_reason = try optional(&reader, string)
            default: try reader.skip()
            }
        }
        return choice
    }

    private static func delta(_ reader: inout JSONText.Reader) throws -> Delta {
        guard try reader.object() else { throw Unread() }
        var delta = Delta()
        var first = true
        while let key = try reader.key(first: &first) {
            switch key {
            case "content": delta.content = try optional(&reader, string)
            case "tool_calls": delta.tool_calls = try optional(&reader) { try list(&$0, toolCall) }
            default: try reader.skip()
            }
        }
        return delta
    }

    private static func toolCall(_ reader: inout JSONText.Reader) throws -> ToolCallDelta {
        guard try reader.object() else { throw Unread() }
        var call = ToolCallDelta()
        var first = true
        while let key = try reader.key(first: &first) {
            switch key {
            case "index": call.index = try optional(&reader, int)
            case "id": call.id = try optional(&reader, string)
            case "function": call.function = try optional(&reader, function)
            default: try reader.skip()
            }
        }
        return call
    }

    private static func function(_ reader: inout JSONText.Reader) throws -> ToolCallDelta.Function {
        guard try reader.object() else { throw Unread() }
        var function = ToolCallDelta.Function()
        var first = true
        while let key = try reader.key(first: &first) {
            switch key {
            case "name": function.name = try optional(&reader, string)
            case "arguments": function.arguments = try optional(&reader, string)
            default: try reader.skip()
            }
        }
        return function
    }

    private static func usage(_ reader: inout JSONText.Reader) throws -> ChunkUsage {
        guard try reader.object() else { throw Unread() }
        var usage = ChunkUsage()
        var first = true
        while let key = try reader.key(first: &first) {
            switch key {
            case "prompt_tokens": usage.prompt_tokens = try optional(&reader, int)
            case "completion_tokens": usage.completion_tokens = try optional(&reader, int)
            default: try reader.skip()
            }
        }
        return usage
    }

    /// Null as nil, as `init(json:)` reads an absent or null field; else the value `read` reads.
    private static func optional<T>(_ reader: inout JSONText.Reader, _ read: (inout JSONText.Reader) throws -> T) throws -> T? {
        if try reader.null() { return nil }
        return try read(&reader)
    }

    private static func list<T>(_ reader: inout JSONText.Reader, _ read: (inout JSONText.Reader) throws -> T) throws -> [T] {
        guard try reader.array() else { throw Unread() }
        var items: [T] = []
        var first = true
        while try reader.element(first: &first) { items.append(try read(&reader)) }
        return items
    }

    private static func string(_ reader: inout JSONText.Reader) throws -> String {
        guard let text = try reader.string() else { throw Unread() }
        return text
    }

    private static func int(_ reader: inout JSONText.Reader) throws -> Int {
        guard case .int(let number)? = try reader.number() else { throw Unread() }
        return number
    }
}
