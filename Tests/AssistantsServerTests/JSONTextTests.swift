import Foundation
import Testing
@testable import AssistantsServer

/// The hand-written JSON reader and writer behind request bodies and model-call bodies: it must
/// agree with Foundation's coders on valid JSON and reject what they reject.
@Suite struct JSONTextTests {
    /// Foundation's reading of the same text, for comparison.
    private func foundation(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test(arguments: [
        #"{"a":1,"b":-2.5,"c":"x","d":[true,false,null],"e":{"f":[]},"g":{}}"#,
        #"  [1, 2e3, -0, 0.5, 1E-2, 9223372036854775807, 92233720368547758070, -9223372036854775808]  "#,
        #""esc: \" \\ \/ \b \f \n \r \t \u00e9 \u20AC \ud83d\ude00 end""#,
        #"{"unicode":"ünïcødé ✓ 😀","empty":"","nested":[[[[{"k":[1]}]]]]}"#,
        "123", "-7", "true", "null", "\"\"", "[]", "{}",
    ])
    func agreesWithFoundation(_ text: String) throws {
        #expect(try JSONText.parse(text) == foundation(text))
        #expect(try JSONText.parse(Array(text.utf8)) == foundation(text))
    }

    @Test(arguments: [
        "", "   ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", ".5", "-", "1e", "+1",
        "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}b\"", "1 2", "{} []",
        "NaN", "Infinity", "1e999",
    ])
    func rejectsWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONText.SyntaxError.self) { try JSONText.parse(text) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() throws {
        #expect(throws: JSONText.SyntaxError.self) { try JSONText.parse([0x22, 0xFF, 0xFE, 0x22]) }
        #expect(throws: JSONText.SyntaxError.self) { try JSONText.parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)) }
        #expect(try JSONText.parse(String(repeating: "[", count: 500) + String(repeating: "]", count: 500)) != .null)
    }

    @Test func writesWhatFoundationReadsBack() throws {
        let value: JSONValue = [
            "text": "quote \" backslash \\ slash / newline \n tab \t bell \u{07} nul \u{00} ünï 😀",
            "numbers": [0, -1, .int(Int.max), .int(Int.min), .double(0.5), .double(-2.25), .double(1e-7), .double(1e300)],
            "flags": [true, false, .null],
            "nested": ["empty": [:], "list": []],
        ]
        let text = JSONText.string(value)
        #expect(try foundation(text) == value)
        #expect(try JSONText.parse(text) == value)
        #expect(text.contains("slash /"))
        #expect(JSONText.string(.double(.nan)) == "null")
        #expect(JSONText.string(.double(.infinity)) == "null")
    }
}

/// The pooled CSPRNG bytes behind every id.
@Suite struct IdentifierTests {
    @Test func idsHaveThePrefixAnd24AlphanumericsAndDoNotRepeat() {
        var seen = Set<String>()
        for _ in 0..<5_000 {
            let id = IDPrefix.run.makeID()
            #expect(id.hasPrefix("run_"))
            let suffix = id.dropFirst(4)
            #expect(suffix.count == 24)
            #expect(suffix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            seen.insert(id)
        }
        #expect(seen.count == 5_000)
    }

    @Test func everyCharacterOfTheAlphabetIsUsedAboutEvenly() {
        var counts: [Character: Int] = [:]
        for _ in 0..<2_000 {
            for character in IDPrefix.message.makeID().dropFirst(4) { counts[character, default: 0] += 1 }
        }
        // 48,000 draws over 62 characters: about 774 each.
        #expect(counts.count == 62)
        #expect(counts.values.allSatisfy { (550...1_000).contains($0) })
    }
}

/// The encoder behind every stored object and response: Foundation's JSON, keys in the type's order.
@Suite struct OrderedJSONEncoderTests {
    private func foundation(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Both texts read back as the same JSON, and ours reads back as the same object.
    private func agrees<T: Codable>(_ value: T) throws {
        let ours = try OrderedJSONEncoder.string(value)
        #expect(try JSONText.parse(ours) == JSONText.parse(foundation(value)))
        #expect(try JSONText.parse(OrderedJSONEncoder.string(JSONCoding.decode(T.self, from: ours))) == JSONText.parse(ours))
    }

    @Test func modelsEncodeAsFoundationEncodesThem() throws {
        var run = Run(id: "run_1", created_at: 1_700_000_000, thread_id: "thread_1", assistant_id: "asst_1", model: "m", instructions: "Be \"brief\"\n/ok")
        run.tools = [["type": "function", "function": ["name": "add", "parameters": ["type": "object", "properties": ["a": ["type": "number"]]]]]]
        run.metadata = ["k": "v", "ü": "✓"]
        run.temperature = 0.7
        run.top_p = 1
        run.required_action = RequiredAction(toolCalls: [ToolCall(id: "call_1", name: "add", arguments: "{\"a\":1}")])
        run.usage = Usage(prompt_tokens: 3, completion_tokens: 4)
        run.last_error = LastError(code: "server_error", message: "x")
        run.incomplete_details = IncompleteDetails(reason: "max_prompt_tokens")
        run.response_format = ["type": "json_schema", "json_schema": ["name": "n", "strict": true, "schema": [:]]]
        try agrees(run)
        let plain = Run(id: "run_2", created_at: 0, thread_id: "t", assistant_id: "a", model: "m", instructions: "")
        try agrees(plain)

        var message = Message(id: "msg_1", created_at: 1, thread_id: "thread_1", role: "assistant",
                              content: [Message.textPart("hi", annotations: [["type": "file_citation", "start_index": 0, "end_index": 2]])])
        message.attachments = [["file_id": "file-1", "tools": [["type": "file_search"]]]]
        message.incomplete_details = IncompleteDetails(reason: "max_tokens")
        try agrees(message)
        try agrees(RunStep(id: "step_1", created_at: 2, run: run, type: "tool_calls",
                           step_details: ["type": "tool_calls", "tool_calls": [["id": "call_1", "type": "function", "function": ["output": .null]]]]))
        var assistant = Assistant(id: "asst_1", created_at: 3, model: "m")
        assistant.name = nil
        try agrees(assistant)
        try agrees(AssistantThread(id: "thread_1", created_at: 4))
        try agrees(VectorStoreFile(id: "file-1", created_at: 5, vector_store_id: "vs_1", chunking_strategy: .auto))
        try agrees(OpenAIFile(id: "file-1", bytes: 10, created_at: 6, filename: "a \"b\".txt", purpose: "assistants"))
    }

    @Test func keysFollowTheTypesOrderAndTheSameObjectGivesTheSameText() throws {
        let run = Run(id: "run_1", created_at: 1, thread_id: "thread_1", assistant_id: "asst_1", model: "m", instructions: "")
        let text = try OrderedJSONEncoder.string(run)
        #expect(text.hasPrefix(#"{"id":"run_1","object":"thread.run","created_at":1,"thread_id":"thread_1","assistant_id":"asst_1","status":"queued","#))
        #expect(try OrderedJSONEncoder.string(run) == text)
    }

    /// Containers a model's own `encode(to:)` may use beyond the synthesized ones.
    struct Shapes: Encodable {
        enum Keys: String, CodingKey { case a, b, c, d }
        func encode(to encoder: any Encoder) throws {
            var keyed = encoder.container(keyedBy: Keys.self)
            try keyed.encode(Float(0.5), forKey: .a)
            try keyed.encode(UInt64.max, forKey: .b)
            var nested = keyed.nestedUnkeyedContainer(forKey: .c)
            try nested.encodeNil()
            try nested.encode(-0.0)
            var inner = nested.nestedContainer(keyedBy: Keys.self)
            try inner.encode(true, forKey: .a)
            try keyed.encodeIfPresent(Optional<Int>.none, forKey: .d)
            var single = keyed.superEncoder(forKey: .d).singleValueContainer()
            try single.encode("late")
        }
    }

    struct Nothing: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    @Test func nestedContainersAndEdgeValues() throws {
        let text = try OrderedJSONEncoder.string(Shapes())
        #expect(text == #"{"a":0.5,"b":18446744073709551615,"c":[null,-0,{"a":true}],"d":"late"}"#)
        #expect(try JSONText.parse(text) == JSONText.parse(foundation(Shapes())))
        #expect(try OrderedJSONEncoder.string([Nothing()]) == "[{}]")
        // Nullable's values and the scalars a generic call carries go straight into the tree.
        #expect(try OrderedJSONEncoder.string([Nullable(wrappedValue: 3), Nullable<Int>(wrappedValue: nil)]) == "[3,null]")
        #expect(try OrderedJSONEncoder.string([Nullable(wrappedValue: true)]) == "[true]")
        #expect(try OrderedJSONEncoder.string([Nullable(wrappedValue: 0.5), Nullable(wrappedValue: 1e300)]) == foundation([0.5, 1e300]))
        #expect(try OrderedJSONEncoder.string(Nullable(wrappedValue: "a/\"")) == foundation("a/\""))
        #expect(throws: EncodingError.self) { try OrderedJSONEncoder.string([Nullable(wrappedValue: Double.nan)]) }
        #expect(throws: EncodingError.self) { try OrderedJSONEncoder.string([Double.nan]) }
        #expect(throws: EncodingError.self) { try OrderedJSONEncoder.string(["x": Double.infinity]) }
    }
}

/// The decoder behind every stored object the server reads back.
@Suite struct JSONTreeDecoderTests {
    /// Our decoding and Foundation's of the same text give the same object.
    private func agrees<T: Codable>(_ type: T.Type, _ text: String) throws {
        let ours = try JSONTreeDecoder.decode(type, from: text)
        let theirs = try JSONDecoder().decode(type, from: Data(text.utf8))
        #expect(try JSONText.parse(OrderedJSONEncoder.string(ours)) == JSONText.parse(OrderedJSONEncoder.string(theirs)))
    }

    @Test func storedModelsDecodeAsWithFoundation() throws {
        var run = Run(id: "run_1", created_at: 1, thread_id: "thread_1", assistant_id: "asst_1", model: "m", instructions: "i")
        run.tools = [["type": "function", "function": ["name": "f", "parameters": ["type": "object"]]]]
        run.required_action = RequiredAction(toolCalls: [ToolCall(id: "call_1", name: "f", arguments: "{}")])
        run.usage = Usage(prompt_tokens: 1, completion_tokens: 2)
        run.temperature = 0.25
        try agrees(Run.self, OrderedJSONEncoder.string(run))
        let message = Message(id: "msg_1", created_at: 2, thread_id: "thread_1", role: "user", content: [Message.textPart("x")])
        try agrees(Message.self, OrderedJSONEncoder.string(message))
        try agrees(RunStep.self, OrderedJSONEncoder.string(RunStep(id: "step_1", created_at: 3, run: run, type: "message_creation",
                                                                   step_details: ["type": "message_creation", "message_creation": ["message_id": "msg_1"]])))
        try agrees(Assistant.self, OrderedJSONEncoder.string(Assistant(id: "asst_1", created_at: 4, model: "m")))
        // Missing nullable fields decode as nil, as with Foundation; whole doubles read as integers and back.
        var stripped = try JSONText.parse(OrderedJSONEncoder.string(run))
        if case .object(var fields) = stripped {
            fields["last_error"] = nil
            fields["created_at"] = .double(1)
            fields["temperature"] = .int(1)
            stripped = .object(fields)
        }
        try agrees(Run.self, stripped.jsonString)
        let decoded = try JSONTreeDecoder.decode(Run.self, from: stripped.jsonString)
        #expect(decoded.created_at == 1 && decoded.temperature == 1 && decoded.last_error == nil)
    }

    struct Strict: Decodable, Equatable {
        var count: Int
        var name: String
        var small: UInt8?
        var list: [Int]
    }

    @Test func wrongTypesMissingKeysAndNullsFail() throws {
        #expect(try JSONTreeDecoder.decode(Strict.self, from: #"{"count":2.0,"name":"n","list":[1,2],"small":null}"#)
                == Strict(count: 2, name: "n", small: nil, list: [1, 2]))
        for text in [#"{"count":"2","name":"n","list":[]}"#, #"{"name":"n","list":[]}"#, #"{"count":null,"name":"n","list":[]}"#,
                     #"{"count":1.5,"name":"n","list":[]}"#, #"{"count":1,"name":"n","list":[],"small":300}"#,
                     #"{"count":1,"name":"n","list":[null]}"#, #"[1]"#, #"{"count":1,"name":"n","list":[]"#] {
            #expect(throws: (any Error).self) { try JSONTreeDecoder.decode(Strict.self, from: text) }
            #expect(throws: (any Error).self) { try JSONDecoder().decode(Strict.self, from: Data(text.utf8)) }
        }
        #expect(try JSONTreeDecoder.decode(JSONValue.self, from: #"{"a":[1,{"b":null}]}"#) == ["a": [1, ["b": .null]]])
        #expect(try JSONTreeDecoder.decode([String: String].self, from: #"{"a":"1"}"#) == ["a": "1"])
    }

    @Test func aTextDeltaIsTheAPIsMessageDelta() throws {
        let tricky = "a \"quote\", a \\ backslash,\nnew line, tab\t, \u{01} and caf\u{e9} \u{1F600}"
        for first in [true, false] {
            let text = TurnState.textDelta(messageID: "msg_abc", text: tricky, first: first)
            var part: JSONValue = ["value": .string(tricky)]
            if first { part = ["value": .string(tricky), "annotations": []] }
            let expected: JSONValue = [
                "id": "msg_abc", "object": "thread.message.delta",
                "delta": ["content": [["index": 0, "type": "text", "text": part]]],
            ]
            #expect(try JSONText.parse(text) == expected)
            #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
        }
    }
}
