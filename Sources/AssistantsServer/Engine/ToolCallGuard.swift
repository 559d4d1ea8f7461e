import Foundation

/// Makes the function calls a run exposes valid by construction, for models that get them wrong:
/// when the upstream can constrain its output to a JSON schema, the turn asks for exactly
/// `{"name", "arguments"}` (or a plain message) and the engine builds the call itself; otherwise
/// malformed arguments are repaired where that is unambiguous, and raw `<tool_call>` markup in
/// text is turned into calls. A call that still does not match its function's parameters never
/// reaches `requires_action`.
enum ToolCallGuard {
    /// The schema a constrained turn answers in: one call of one of the functions, or, when the
    /// model may choose, a message instead.
    static func responseFormat(functions: [JSONValue], choice: JSONValue) -> JSONValue? {
        let named = choice["function"]?["name"]?.stringValue
        let offered = functions.filter { named == nil || $0["function"]?["name"]?.stringValue == named }
        guard !offered.isEmpty, choice.stringValue != "none" else { return nil }
        let calls: [JSONValue] = offered.map { function in
            [
                "type": "object",
                "properties": [
                    "name": ["type": "string", "enum": [function["function"]?["name"] ?? ""]],
                    "arguments": bounded(function["function"]?["parameters"] ?? ["type": "object"]),
                ],
                "required": ["name", "arguments"],
            ]
        }
        var alternatives = calls
        if choice.stringValue == "auto" || choice == .null {
            // The same shape as a call, so the model picks between the functions and a reply by name.
            alternatives.append(replySchema)
        }
        let schema: JSONValue = alternatives.count == 1 ? alternatives[0] : ["anyOf": .array(alternatives)]
        return ["type": "json_schema", "json_schema": ["name": "assistant_turn", "strict": true, "schema": schema]]
    }

    /// The longest array a constrained answer may write where the schema sets no bound: small
    /// models otherwise never close a list. Validation still uses the function's own schema.
    static let arrayBound = 64

    /// The schema a grammar is made from: arrays bounded, and `required` names that are not among
    /// the declared `properties` left out (a slip the API never judged for non-strict functions).
    static func bounded(_ schema: JSONValue) -> JSONValue {
        switch schema {
        case .object(var rules):
            for (key, value) in rules where key != "enum" && key != "const" && key != "default" && key != "required" {
                rules[key] = bounded(value)
            }
            if rules["type"]?.stringValue == "array" && rules["maxItems"] == nil {
                rules["maxItems"] = .int(arrayBound)
            }
            if let required = rules["required"]?.arrayValue {
                let declared = rules["properties"]?.objectValue ?? [:]
                let kept = required.filter { $0.stringValue.map { declared[$0] != nil } ?? false }
                rules["required"] = kept.isEmpty ? nil : .array(kept)
            }
            return .object(rules)
        case .array(let items):
            return .array(items.map(bounded))
        default:
            return schema
        }
    }

    /// The name a constrained turn uses for "no call, a reply to the user".
    static let replyName = "reply_to_user"

    /// A reply to the user, in a constrained turn: never empty.
    static let replySchema: JSONValue = [
        "type": "object",
        "properties": ["name": ["type": "string", "enum": [.string(replyName)]], "message": ["type": "string", "minLength": 1]],
        "required": ["name", "message"],
    ]

    /// The schema of a turn that may only reply (the last try of a model that made no valid call
    /// where the run does not force one).
    static let replyFormat: JSONValue = ["type": "json_schema", "json_schema": ["name": "assistant_turn", "strict": true, "schema": replySchema]]

    /// Reads a constrained answer: a call (`{"name", "arguments"}`) or a message (`{"name": "reply_to_user", "message"}`).
    static func parseConstrained(_ text: String) -> (call: ToolCall?, message: String?) {
        guard let value = repairJSON(text), case .object(let fields) = value else { return (nil, nil) }
        if let name = fields["name"]?.stringValue, name != replyName {
            let arguments = fields["arguments"] ?? [:]
            let encoded = arguments.stringValue.flatMap { repairJSON($0) }?.jsonString ?? arguments.jsonString
            return (ToolCall(id: IDPrefix.call.makeID(), name: name, arguments: encoded), nil)
        }
        return (nil, fields["message"]?.stringValue)
    }

    /// Parses JSON as models write it: inside code fences, with text around it, with trailing commas.
    static func repairJSON(_ text: String) -> JSONValue? {
        if let value = try? JSONCoding.decode(JSONValue.self, from: text) { return value }
        var candidate = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if candidate.hasPrefix("```") {
            candidate = candidate.split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
                .joined(separator: "\n").replacingOccurrences(of: "```", with: "")
        }
        if let start = candidate.firstIndex(where: { $0 == "{" || $0 == "[" }),
           let end = candidate.lastIndex(where: { $0 == "}" || $0 == "]" }), start <= end {
            candidate = String(candidate[start...end])
        }
        return try? JSONCoding.decode(JSONValue.self, from: withoutTrailingCommas(candidate))
    }

    /// Drops a comma that only whitespace separates from a closing brace or bracket (outside strings).
    static func withoutTrailingCommas(_ text: String) -> String {
        let characters = Array(text)
        var result = ""
        var inString = false
        var escaped = false
        for (index, character) in characters.enumerated() {
            if inString {
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
            } else if character == "\"" {
                inString = true
            } else if character == "," {
                let next = characters[(index + 1)...].first { !$0.isWhitespace }
                if next == "}" || next == "]" { continue }
            }
            result.append(character)
        }
        return result
    }

    /// Calls written as text markup (`<tool_call>{...}</tool_call>`), and the text without any markup.
    static func extractMarkup(_ text: String) -> (calls: [ToolCall], text: String) {
        guard containsMarkup(text) else { return ([], text) }
        var calls: [ToolCall] = []
        var remaining = text
        while let open = remaining.range(of: "<tool_call>") {
            let close = remaining.range(of: "</tool_call>", range: open.upperBound..<remaining.endIndex)
            let body = String(remaining[open.upperBound..<(close?.lowerBound ?? remaining.endIndex)])
            if case .object(let fields)? = repairJSON(body), let name = fields["name"]?.stringValue {
                let arguments = fields["arguments"] ?? fields["parameters"] ?? [:]
                calls.append(ToolCall(id: IDPrefix.call.makeID(), name: name, arguments: arguments.stringValue ?? arguments.jsonString))
            }
            remaining.removeSubrange(open.lowerBound..<(close?.upperBound ?? remaining.endIndex))
        }
        while let open = remaining.range(of: "<tool_response>") {
            let close = remaining.range(of: "</tool_response>", range: open.upperBound..<remaining.endIndex)
            remaining.removeSubrange(open.lowerBound..<(close?.upperBound ?? remaining.endIndex))
        }
        return (calls, remaining.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Whether the text has `<tool_call>` or `<tool_response>` in it. Every answer is looked at
    /// once at the end of its turn, so this scans its UTF-8 bytes in place for `<tool_` and looks
    /// at what follows: Foundation's `contains` bridged the text to an NSString (1% of the server's
    /// CPU as 10,000 streams ended), and `utf8.firstRange(of:)` runs an unspecialized generic
    /// searcher (1.3% of a short run's).
    static func containsMarkup(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            let prefix = "<tool_".utf8
            var start = bytes.startIndex
            while let open = bytes[start...].firstIndex(of: UInt8(ascii: "<")) {
                let rest = bytes[open...]
                if rest.starts(with: prefix) {
                    let tag = rest.dropFirst(prefix.count)
                    if tag.starts(with: "call>".utf8) || tag.starts(with: "response>".utf8) { return true }
                }
                start = open + 1
            }
            return false
        }
    }

    /// Judges each call as the API did: its arguments must be a JSON object (repaired where that
    /// is unambiguous), and only a function with `strict: true` has them checked against its
    /// parameters. Returns the problems of the calls still invalid.
    static func validate(_ calls: inout [ToolCall], functions: [JSONValue]) -> [String] {
        var problems: [String] = []
        for index in calls.indices {
            let name = calls[index].function.name
            guard let function = functions.first(where: { $0["function"]?["name"]?.stringValue == name }) else {
                problems.append("the model called an unknown function '\(name)'")
                continue
            }
            let text = calls[index].function.arguments
            let exact = try? JSONCoding.decode(JSONValue.self, from: text)
            guard let arguments = exact ?? repairJSON(text.isEmpty ? "{}" : text) else {
                problems.append("the arguments of \(name) are not JSON: \(text.prefix(200))")
                continue
            }
            guard case .object = arguments else {
                problems.append("the arguments of \(name) are not a JSON object: \(text.prefix(200))")
                continue
            }
            // Only a repaired call gets new text; a valid one keeps the model's exact arguments.
            if exact == nil { calls[index].function.arguments = arguments.jsonString }
            if function["function"]?["strict"]?.boolValue == true, let schema = function["function"]?["parameters"] {
                problems += JSONSchemaValidator.problems(arguments, schema: schema).map { "\(name) arguments \($0)" }
            }
        }
        return problems
    }
}
