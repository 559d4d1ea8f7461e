import NIOCore
import Testing
@testable import AssistantsServer

/// The engine's pure parts: prompt building and truncation, chunk accumulation, model routing.
@Suite struct EngineTests {
    func run(instructions: String = "Be brief.", truncation: TruncationStrategy? = nil, maxPrompt: Int? = nil) -> Run {
        var run = Run(id: "run_1", created_at: 0, thread_id: "thread_1", assistant_id: "asst_1", model: "m", instructions: instructions)
        if let truncation { run.truncation_strategy = truncation }
        run.max_prompt_tokens = maxPrompt
        return run
    }

    func messages(_ count: Int, size: Int = 10) -> [Message] {
        (0..<count).map { Message(id: "msg_\($0)", created_at: $0, thread_id: "thread_1", role: $0 % 2 == 0 ? "user" : "assistant",
                                  content: [Message.textPart("m\($0) " + String(repeating: "x", count: size))]) }
    }

    @Test func promptHasSystemThenThreadInOrder() {
        let prompt = PromptBuilder.build(run: run(), threadMessages: messages(3), steps: [], contextWindow: 128_000)
        #expect(prompt.messages.count == 4)
        #expect(prompt.messages[0]["role"]?.stringValue == "system")
        #expect(prompt.messages[0]["content"]?.stringValue == "Be brief.")
        #expect(prompt.messages[1]["content"]?.stringValue?.hasPrefix("m0") == true)
        #expect(prompt.messages[3]["role"]?.stringValue == "user")
    }

    @Test func lastMessagesKeepsTheNewest() {
        let prompt = PromptBuilder.build(run: run(truncation: .init(type: "last_messages", last_messages: 2)),
                                         threadMessages: messages(5), steps: [], contextWindow: 128_000)
        #expect(prompt.messages.count == 3)
        #expect(prompt.messages[1]["content"]?.stringValue?.hasPrefix("m3") == true)
    }

    @Test func autoTruncationFitsTheBudget() {
        let prompt = PromptBuilder.build(run: run(maxPrompt: 600), threadMessages: messages(20, size: 400), steps: [], contextWindow: 128_000)
        #expect(prompt.estimatedTokens <= 600)
        #expect(prompt.messages.count < 21)
        #expect(prompt.messages.last?["content"]?.stringValue?.hasPrefix("m19") == true)
        #expect(!prompt.overBudget)
    }

    @Test func toolCallsAndOutputsFollowTheThread() {
        let step = RunStep(id: "step_1", created_at: 0, run: run(), type: "tool_calls", step_details: [
            "type": "tool_calls",
            "tool_calls": [["id": "call_1", "type": "function", "function": ["name": "add", "arguments": "{\"a\":1}", "output": "3"]]],
        ])
        var completed = step
        completed.status = .completed
        let prompt = PromptBuilder.build(run: run(), threadMessages: messages(1), steps: [completed], contextWindow: 128_000)
        #expect(prompt.messages.count == 4)
        #expect(prompt.messages[2]["tool_calls"]?.arrayValue?.first?["id"]?.stringValue == "call_1")
        #expect(prompt.messages[3]["role"]?.stringValue == "tool")
        #expect(prompt.messages[3]["content"]?.stringValue == "3")
    }

    @Test func accumulatorMergesToolCallFragments() async throws {
        var accumulator = TurnAccumulator()
        var deltas: [ChatDelta] = []
        let chunks = [
            #"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"add","arguments":""}}]}}]}"#,
            #"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]}}]}"#,
            #"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"sub","arguments":"{}"}}]}}]}"#,
            #"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":"tool_calls"}]}"#,
            #"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
        ]
        for chunk in chunks {
            try await accumulator.add(try ChatChunk(parsing: chunk.utf8)) { deltas.append($0) }
        }
        let turn = accumulator.turn
        #expect(turn.toolCalls.map(\.id) == ["call_a", "call_b"])
        #expect(turn.toolCalls[0].function.arguments == "{\"x\":1}")
        #expect(turn.toolCalls[1].function.name == "sub")
        #expect(turn.finishReason == "tool_calls")
        #expect(turn.usage == Usage(prompt_tokens: 7, completion_tokens: 3))
        #expect(deltas.count == 4)
    }

    @Test func chunksReadNullsAsAbsentAndRefuseWrongTypes() throws {
        let chunk = try ChatChunk(parsing: #"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":null},"finish_reason":null}],"usage":null}"#.utf8)
        #expect(chunk.choices?.count == 1)
        #expect(chunk.choices?.first?.delta?.content == nil)
        #expect(chunk.usage == nil)
        let whole = try ChatChunk(parsing: #"{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1.0}}"#.utf8)
        #expect(whole.choices?.first?.message?.content == "hi")
        #expect(whole.usage?.completion_tokens == 1)
        for text in [#"{"choices":"x"}"#, #"{"choices":[{"delta":{"content":5}}]}"#, #"{"usage":{"prompt_tokens":"3"}}"#, "[]", "{"] {
            #expect(throws: (any Error).self) { try ChatChunk(parsing: text.utf8) }
        }
    }

    @Test func sseLinesSplitAcrossBuffers() {
        var splitter = SSELineSplitter()
        #expect(splitter.push(ByteBuffer(string: "data: {\"a\"")).isEmpty)
        #expect(splitter.push(ByteBuffer(string: ":1}\r\n\ndata: [DONE]\n")) == ["data: {\"a\":1}", "", "data: [DONE]"])
    }

    @Test func modelRoutesByNameThenPrefixThenDefault() {
        let router = ModelRouter(routes: [
            .init(name: "gpt-4o", prefix: nil, upstream_url: "http://a/v1", api_key: "ka", api_key_env: nil, upstream_model: "gpt-4o-2024", context_window: 1000),
            .init(name: nil, prefix: "llama", upstream_url: "http://b/v1/", api_key: nil, api_key_env: nil, upstream_model: nil, context_window: nil),
        ], defaultURL: "http://default/v1", defaultAPIKey: "kd")
        #expect(router.endpoint(for: "gpt-4o") == UpstreamEndpoint(baseURL: "http://a/v1", apiKey: "ka", upstreamModel: "gpt-4o-2024", contextWindow: 1000))
        #expect(router.endpoint(for: "llama-3")?.baseURL == "http://b/v1")
        #expect(router.endpoint(for: "llama-3")?.apiKey == nil)
        #expect(router.endpoint(for: "other") == UpstreamEndpoint(baseURL: "http://default/v1", apiKey: "kd", upstreamModel: "other", contextWindow: 128_000))
        #expect(ModelRouter(defaultURL: nil, defaultAPIKey: nil).endpoint(for: "x") == nil)
    }
}
