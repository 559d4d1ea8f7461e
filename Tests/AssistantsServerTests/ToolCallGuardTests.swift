import Testing
@testable import AssistantsServer

/// Constraining, repairing and validating the tool calls of weak models.
@Suite struct ToolCallGuardTests {
    static let primes: JSONValue = ["type": "function", "function": [
        "name": "add_prime_numbers",
        "parameters": ["type": "object", "properties": ["prime_numbers": ["type": "array", "items": ["type": "integer"]]],
                       "required": ["prime_numbers"]],
    ]]
    static let weather: JSONValue = ["type": "function", "function": [
        "name": "get_weather",
        "parameters": ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"], "additionalProperties": false],
    ]]

    static func strict(_ tool: JSONValue) -> JSONValue {
        guard case .object(var fields) = tool, case .object(var function)? = fields["function"] else { return tool }
        function["strict"] = true
        fields["function"] = .object(function)
        return .object(fields)
    }

    /// The seed notebook's schema: `required` names a property it never declares.
    static let seedSlip: JSONValue = ["type": "function", "function": [
        "name": "add_prime_numbers",
        "parameters": ["type": "object", "properties": ["prime_numbers": ["type": "array", "items": ["type": "integer"]]],
                       "required": ["add_prime_numbers"]],
    ]]

    @Test func theSeedsSlipIsNeverJudged() throws {
        var call = [ToolCall(id: "call_1", name: "add_prime_numbers", arguments: #"{"prime_numbers": [2, 3, 5]}"#)]
        #expect(ToolCallGuard.validate(&call, functions: [Self.seedSlip]).isEmpty)
        #expect(call[0].function.arguments == #"{"prime_numbers": [2, 3, 5]}"#)
        // The grammar of a constrained turn asks only for declared properties.
        let format = try #require(ToolCallGuard.responseFormat(functions: [Self.seedSlip], choice: "required"))
        let arguments = format["json_schema"]?["schema"]?["properties"]?["arguments"]
        #expect(arguments?["required"] == nil)
        #expect(arguments?["properties"]?["prime_numbers"]?["maxItems"] == .int(ToolCallGuard.arrayBound))
        let kept = ToolCallGuard.bounded(["type": "object", "properties": ["a": ["type": "string"]], "required": ["a", "b"]])
        #expect(kept["required"] == ["a"])
    }

    @Test func schemaForRequiredNamedAndAuto() throws {
        let required = try #require(ToolCallGuard.responseFormat(functions: [Self.primes, Self.weather], choice: "required"))
        #expect(required["json_schema"]?["schema"]?["anyOf"]?.arrayValue?.count == 2)
        let named = try #require(ToolCallGuard.responseFormat(functions: [Self.primes, Self.weather],
                                                              choice: ["type": "function", "function": ["name": "get_weather"]]))
        #expect(named["json_schema"]?["schema"]?["properties"]?["name"]?["enum"] == ["get_weather"])
        let auto = try #require(ToolCallGuard.responseFormat(functions: [Self.primes], choice: "auto"))
        #expect(auto["json_schema"]?["schema"]?["anyOf"]?.arrayValue?.last?["required"] == ["name", "message"])
        #expect(ToolCallGuard.responseFormat(functions: [Self.primes], choice: "none") == nil)
    }

    /// What llama-server answered SmolLM2 under the schema (recorded, issue 7).
    @Test func constrainedAnswerBecomesACall() throws {
        var turn = ChatTurn()
        turn.text = #"{"name":"add_prime_numbers","arguments":{"prime_numbers":[2,3,5,7]}}"#
        let problems = RunExecutor.settleToolCalls(&turn, constrained: true, functions: [Self.primes], serverTools: [])
        #expect(problems.isEmpty)
        #expect(turn.text.isEmpty)
        #expect(turn.toolCalls.first?.function.name == "add_prime_numbers")
        #expect(turn.toolCalls.first?.function.arguments == #"{"prime_numbers":[2,3,5,7]}"#)
        var message = ChatTurn()
        message.text = #"{"name": "reply_to_user", "message": "The sum is 17."}"#
        #expect(RunExecutor.settleToolCalls(&message, constrained: true, functions: [Self.primes], serverTools: []).isEmpty)
        #expect(message.text == "The sum is 17." && message.toolCalls.isEmpty)
    }

    @Test func malformedArgumentsAreRepairedOrRefused() {
        var fenced = [ToolCall(id: "call_1", name: "get_weather", arguments: "```json\n{\"city\": \"Paris\",}\n```")]
        #expect(ToolCallGuard.validate(&fenced, functions: [Self.weather]).isEmpty)
        #expect(fenced[0].function.arguments == #"{"city":"Paris"}"#)
        // Not strict: the API passed such calls on as the model wrote them.
        var wrongType = [ToolCall(id: "call_2", name: "add_prime_numbers", arguments: #"{"prime_numbers": "2, 3"}"#)]
        #expect(ToolCallGuard.validate(&wrongType, functions: [Self.primes]).isEmpty)
        #expect(wrongType[0].function.arguments == #"{"prime_numbers": "2, 3"}"#)
        var extra = [ToolCall(id: "call_3", name: "get_weather", arguments: #"{"city": "Oslo", "unit": "C"}"#)]
        #expect(ToolCallGuard.validate(&extra, functions: [Self.weather]).isEmpty)
        // Strict: checked against the schema.
        #expect(!ToolCallGuard.validate(&wrongType, functions: [Self.strict(Self.primes)]).isEmpty)
        #expect(!ToolCallGuard.validate(&extra, functions: [Self.strict(Self.weather)]).isEmpty)
        var notObject = [ToolCall(id: "call_6", name: "get_weather", arguments: "[1, 2]")]
        #expect(!ToolCallGuard.validate(&notObject, functions: [Self.weather]).isEmpty)
        var unknown = [ToolCall(id: "call_4", name: "launch", arguments: "{}")]
        #expect(!ToolCallGuard.validate(&unknown, functions: [Self.weather]).isEmpty)
        var garbage = [ToolCall(id: "call_5", name: "get_weather", arguments: "city=Paris")]
        #expect(!ToolCallGuard.validate(&garbage, functions: [Self.weather]).isEmpty)
    }

    @Test func markupNeverLeaksIntoText() {
        var turn = ChatTurn()
        turn.text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call><tool_response>old</tool_response>"
        let problems = RunExecutor.settleToolCalls(&turn, constrained: false, functions: [Self.weather], serverTools: [])
        #expect(problems.isEmpty)
        #expect(turn.text == "Let me check.")
        #expect(turn.toolCalls.map(\.function.name) == ["get_weather"])
        #expect(!turn.text.contains("<tool"))
    }

    @Test func markupIsFoundByItsBytesAfterAnyText() {
        #expect(ToolCallGuard.containsMarkup("Grüße, 東京 🌧 <tool_call>{}</tool_call>"))
        #expect(ToolCallGuard.containsMarkup("é<tool_response>x</tool_response>"))
        #expect(!ToolCallGuard.containsMarkup("<tool_cal> <tool_ <t=123> tool_call>"))
        #expect(!ToolCallGuard.containsMarkup(""))
        #expect(ToolCallGuard.containsMarkup("<<tool_call>"), "a tag right after a stray <")
        #expect(ToolCallGuard.containsMarkup("<tool_response>"), "a tag that is the whole text")
        for cut in ["x<", "x<tool_", "x<tool_call", "x<tool_respons", "<tool_response "] {
            #expect(!ToolCallGuard.containsMarkup(cut), "\(cut): a tag cut off is not one")
        }
        // An answer with no markup comes back as it was, non-ASCII text and all.
        let plain = "Grüße aus 東京 <t=1> 🌧"
        #expect(ToolCallGuard.extractMarkup(plain).text == plain)
        #expect(ToolCallGuard.extractMarkup(plain).calls.isEmpty)
    }

    @Test func validatorCoversTheUsualKeywords() {
        let schema: JSONValue = ["type": "object", "required": ["n"], "properties": [
            "n": ["type": "integer", "minimum": 1, "maximum": 5], "tags": ["type": "array", "items": ["type": "string"], "maxItems": 2],
            "mode": ["enum": ["a", "b"]],
        ]]
        #expect(JSONSchemaValidator.problems(["n": 3, "tags": ["x"], "mode": "a"], schema: schema).isEmpty)
        #expect(!JSONSchemaValidator.problems(["n": 9], schema: schema).isEmpty)
        #expect(!JSONSchemaValidator.problems(["n": 2, "tags": ["x", "y", "z"]], schema: schema).isEmpty)
        #expect(!JSONSchemaValidator.problems(["n": 2, "mode": "c"], schema: schema).isEmpty)
        #expect(!JSONSchemaValidator.problems(["tags": []], schema: schema).isEmpty)
        #expect(JSONSchemaValidator.problems(.double(2.0), schema: ["type": "integer"]).isEmpty)
    }
}

extension ToolCallGuardTests {
    @Test func constrainedArraysAreBoundedButValidationIsNot() throws {
        let format = try #require(ToolCallGuard.responseFormat(functions: [Self.primes], choice: "required"))
        let items = format["json_schema"]?["schema"]?["properties"]?["arguments"]?["properties"]?["prime_numbers"]
        #expect(items?["maxItems"]?.intValue == ToolCallGuard.arrayBound)
        #expect(Self.primes["function"]?["parameters"]?["properties"]?["prime_numbers"]?["maxItems"] == nil)
    }
}
