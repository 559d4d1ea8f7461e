import Foundation

/// Validation of the structured parameters shared by several requests:
/// tools, tool_resources, response_format, message content and attachments.
extension JSONRequest {
    /// `tools`: function, file_search and code_interpreter (and v1's retrieval when speaking v1).
    func tools(_ key: String = "tools", maxItems: Int, version: APIVersion = .v2) throws -> Field<[JSONValue]> {
        try array(key, maxItems: maxItems).map { items in
            try items.enumerated().map { index, item in
                let itemKey = "\(key)[\(index)]"
                guard case .object(let fields) = item else { throw typeError(itemKey, expected: "an object", got: item) }
                let tool = JSONRequest(fields: fields, path: param(itemKey) + ".")
                let allowedTypes: Set<String> = version == .v1
                    ? ["function", "retrieval", "code_interpreter"] : ["function", "file_search", "code_interpreter"]
                let type = try tool.required(tool.string("type", allowed: allowedTypes), "type")
                switch type {
                case "function":
                    try tool.rejectUnknown(allowed: ["type", "function"])
                    let function = try tool.required(tool.object("function"), "function")
                    try function.rejectUnknown(allowed: ["name", "description", "parameters", "strict"])
                    let name = try function.required(function.string("name", maxLength: 64), "name")
                    if name.isEmpty || !name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "_" || $0 == "-" }) {
                        throw APIError.invalidRequest(
                            "Invalid '\(function.param("name"))': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                            param: function.param("name"), code: "invalid_value")
                    }
                    _ = try function.string("description")
                    _ = try function.object("parameters")
                    _ = try function.bool("strict")
                case "file_search":
                    try tool.rejectUnknown(allowed: ["type", "file_search"])
                    if let options = try tool.nonNullObject("file_search") {
                        try options.rejectUnknown(allowed: ["max_num_results", "ranking_options"])
                        _ = try options.integer("max_num_results", in: 1...50)
                        if let ranking = try options.nonNullObject("ranking_options") {
                            try ranking.rejectUnknown(allowed: ["ranker", "score_threshold"])
                            _ = try ranking.string("ranker", allowed: ["auto", "default_2024_08_21"])
                            _ = try ranking.number("score_threshold", in: 0...1)
                        }
                    }
                default:
                    try tool.rejectUnknown(allowed: ["type"])
                }
                return item
            }
        }
    }

    /// `tool_resources`: code_interpreter.file_ids (at most 20) and file_search.vector_store_ids (at most 1).
    func toolResources(_ key: String = "tool_resources") throws -> Field<JSONValue> {
        try object(key).map { resources in
            try resources.rejectUnknown(allowed: ["code_interpreter", "file_search"])
            if let code = try resources.nonNullObject("code_interpreter") {
                try code.rejectUnknown(allowed: ["file_ids"])
                try code.stringArray("file_ids", maxItems: 20)
            }
            if let search = try resources.nonNullObject("file_search") {
                try search.rejectUnknown(allowed: ["vector_store_ids", "vector_stores"])
                try search.stringArray("vector_store_ids", maxItems: 1)
                for (index, item) in (try search.array("vector_stores", maxItems: 1).value ?? []).enumerated() {
                    guard case .object(let fields) = item else { throw search.typeError("vector_stores[\(index)]", expected: "an object", got: item) }
                    let inline = JSONRequest(fields: fields, path: search.param("vector_stores[\(index)]") + ".")
                    try inline.rejectUnknown(allowed: ["file_ids", "chunking_strategy", "metadata"])
                    try inline.stringArray("file_ids", maxItems: 10_000)
                    _ = try inline.chunkingStrategy()
                    _ = try inline.metadata()
                }
            }
            return .object(resources.fields)
        }
    }

    /// An array of strings; `null` is refused (no such array in the spec is nullable).
    @discardableResult
    func stringArray(_ key: String, maxItems: Int) throws -> Field<[String]> {
        if case .null = raw(key) { throw typeError(key, expected: "an array", got: .null) }
        return try array(key, maxItems: maxItems).map { items in
            try items.enumerated().map { index, item in
                guard case .string(let text) = item else { throw typeError("\(key)[\(index)]", expected: "a string", got: item) }
                return text
            }
        }
    }

    /// `response_format`: "auto", or {type: text | json_object | json_schema}.
    func responseFormat(_ key: String = "response_format") throws -> Field<JSONValue> {
        try raw(key).map { value in
            switch value {
            case .string("auto"):
                return value
            case .object(let fields):
                let format = JSONRequest(fields: fields, path: param(key) + ".")
                let type = try format.required(format.string("type", allowed: ["text", "json_object", "json_schema"]), "type")
                if type == "json_schema" {
                    let schema = try format.required(format.object("json_schema"), "json_schema")
                    _ = try schema.required(schema.string("name", maxLength: 64), "name")
                    _ = try schema.nonNullObject("schema")
                    _ = try schema.bool("strict")
                }
                return value
            case .string(let other):
                throw APIError.invalidRequest("Invalid value: '\(other)'. Supported values are: 'auto'.", param: param(key), code: "invalid_value")
            default:
                throw typeError(key, expected: "an object", got: value)
            }
        }
    }

    /// Message `content`: a string, or an array of text, image_file and image_url parts.
    /// Returns the parts as stored (`text` becomes `{value, annotations}`).
    func messageContent(_ key: String = "content") throws -> [JSONValue] {
        let value = try required(raw(key), key)
        switch value {
        case .string(let text):
            try Self.checkMessageLength(text, param: param(key))
            return [Message.textPart(text)]
        case .array(let parts):
            if parts.isEmpty {
                throw APIError.invalidRequest(
                    "Invalid '\(param(key))': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                    param: param(key), code: "empty_array")
            }
            return try parts.enumerated().map { index, part in
                let partKey = "\(key)[\(index)]"
                guard case .object(let fields) = part else { throw typeError(partKey, expected: "an object", got: part) }
                let request = JSONRequest(fields: fields, path: param(partKey) + ".")
                let type = try request.required(request.string("type", allowed: ["text", "image_file", "image_url"]), "type")
                switch type {
                case "text":
                    try request.rejectUnknown(allowed: ["type", "text"])
                    let text = try request.required(request.string("text"), "text")
                    try Self.checkMessageLength(text, param: request.param("text"))
                    return Message.textPart(text)
                case "image_file":
                    try request.rejectUnknown(allowed: ["type", "image_file"])
                    let image = try request.required(request.object("image_file"), "image_file")
                    try image.rejectUnknown(allowed: ["file_id", "detail"])
                    let fileID = try image.required(image.string("file_id"), "file_id")
                    let detail = try image.string("detail", allowed: ["auto", "low", "high"]).value ?? "auto"
                    return ["type": "image_file", "image_file": ["file_id": .string(fileID), "detail": .string(detail)]]
                default:
                    try request.rejectUnknown(allowed: ["type", "image_url"])
                    let image = try request.required(request.object("image_url"), "image_url")
                    try image.rejectUnknown(allowed: ["url", "detail"])
                    let url = try image.required(image.nonEmptyString("url"), "url")
                    let detail = try image.string("detail", allowed: ["auto", "low", "high"]).value ?? "auto"
                    return ["type": "image_url", "image_url": ["url": .string(url), "detail": .string(detail)]]
                }
            }
        default:
            throw typeError(key, expected: "a string or an array", got: value)
        }
    }

    static func checkMessageLength(_ text: String, param: String) throws {
        let length = text.count
        if length > 256_000 {
            throw APIError.invalidRequest(
                "Invalid '\(param)': string too long. Expected a string with maximum length 256000, but got a string with length \(length) instead.",
                param: param, code: "string_above_max_length")
        }
    }

    /// Message `attachments`: `[{file_id, tools: [{type: code_interpreter | file_search}]}]`.
    func attachments(_ key: String = "attachments") throws -> Field<[JSONValue]> {
        try array(key).map { items in
            try items.enumerated().map { index, item in
                let itemKey = "\(key)[\(index)]"
                guard case .object(let fields) = item else { throw typeError(itemKey, expected: "an object", got: item) }
                let attachment = JSONRequest(fields: fields, path: param(itemKey) + ".")
                try attachment.rejectUnknown(allowed: ["file_id", "tools"])
                let fileID = try attachment.required(attachment.string("file_id"), "file_id")
                let tools = try attachment.array("tools").value ?? []
                var normalized: [JSONValue] = []
                for (toolIndex, tool) in tools.enumerated() {
                    guard case .object(let toolFields) = tool else {
                        throw attachment.typeError("tools[\(toolIndex)]", expected: "an object", got: tool)
                    }
                    let request = JSONRequest(fields: toolFields, path: attachment.param("tools[\(toolIndex)]") + ".")
                    let type = try request.required(request.string("type", allowed: ["code_interpreter", "file_search"]), "type")
                    try request.rejectUnknown(allowed: ["type"])
                    normalized.append(["type": .string(type)])
                }
                return ["file_id": .string(fileID), "tools": .array(normalized)]
            }
        }
    }

    /// A message given inline (thread create's `messages`, a run's `additional_messages`).
    func inlineMessage() throws -> (role: String, content: [JSONValue], attachments: [JSONValue]?, metadata: [String: String]?) {
        try rejectUnknown(allowed: ["role", "content", "attachments", "metadata"])
        let role = try required(string("role", allowed: ["user", "assistant"]), "role")
        let content = try messageContent()
        let attachments = try attachments().value
        let metadata = try metadata().value
        return (role, content, attachments, metadata)
    }
}

extension JSONRequest {
    /// `chunking_strategy`: `{type: auto}` or `{type: static, static: {max_chunk_size_tokens 100...4096, chunk_overlap_tokens ≤ half}}`.
    func chunkingStrategy(_ key: String = "chunking_strategy") throws -> ChunkingStrategy? {
        guard let strategy = try object(key).value else { return nil }
        let type = try strategy.required(strategy.string("type", allowed: ["auto", "static"]), "type")
        if type == "auto" {
            try strategy.rejectUnknown(allowed: ["type"])
            return .auto
        }
        try strategy.rejectUnknown(allowed: ["type", "static"])
        let settings = try strategy.required(strategy.object("static"), "static")
        try settings.rejectUnknown(allowed: ["max_chunk_size_tokens", "chunk_overlap_tokens"])
        let size = try settings.required(settings.integer("max_chunk_size_tokens", in: 100...4096), "max_chunk_size_tokens")
        let overlap = try settings.required(settings.integer("chunk_overlap_tokens", in: 0...Int.max), "chunk_overlap_tokens")
        if overlap > size / 2 {
            throw APIError.invalidRequest(
                "Invalid '\(settings.param("chunk_overlap_tokens"))': chunk_overlap_tokens must not exceed half of max_chunk_size_tokens.",
                param: settings.param("chunk_overlap_tokens"), code: "invalid_value")
        }
        return ChunkingStrategy(static: .init(max_chunk_size_tokens: size, chunk_overlap_tokens: overlap))
    }

    /// Vector-store file `attributes`: at most 16, keys up to 64 characters, values strings (≤512), numbers or booleans.
    func attributes(_ key: String = "attributes") throws -> Field<[String: JSONValue]> {
        try raw(key).map { value in
            let pairs = try smallObject(key, value)
            for (name, entry) in pairs {
                if name.count > 64 {
                    throw APIError.invalidRequest("Invalid '\(param(key))': key '\(name.prefix(80))' is longer than 64 characters.",
                                                  param: param(key), code: "string_above_max_length")
                }
                switch entry {
                case .string(let text) where text.count <= 512: break
                case .int, .double, .bool: break
                default:
                    throw APIError.invalidRequest(
                        "Invalid '\(param(key)).\(name)': expected a string of at most 512 characters, a number or a boolean.",
                        param: param(key), code: "invalid_value")
                }
            }
            return pairs
        }
    }

    /// `expires_after` of a vector store: `{anchor: "last_active_at", days: 1...365}`.
    func vectorStoreExpiry(_ key: String = "expires_after") throws -> Field<VectorStore.ExpirationAfter> {
        try object(key).map { expiry in
            try expiry.rejectUnknown(allowed: ["anchor", "days"])
            let anchor = try expiry.required(expiry.string("anchor", allowed: ["last_active_at"]), "anchor")
            let days = try expiry.required(expiry.integer("days", in: 1...365), "days")
            return VectorStore.ExpirationAfter(anchor: anchor, days: days)
        }
    }
}
