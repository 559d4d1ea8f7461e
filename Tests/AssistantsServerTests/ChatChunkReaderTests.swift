import NIOCore
import Testing

@testable import AssistantsServer

/// The in-place chunk reader against the tree it stands in for, and the byte-wise SSE lines.
@Suite struct ChatChunkReaderTests {
    /// The chunk read in place, or nil when the fast reading gave up.
    static func fast(_ text: String) -> ChatChunk? {
        Array(text.utf8).withUnsafeBufferPointer(ChatChunk.read)
    }

    /// The chunk read through the `JSONValue` tree, or nil when that fails.
    static func viaTree(_ text: String) -> ChatChunk? {
        (try? JSONText.parse(text)).flatMap { try? ChatChunk(json: $0) }
    }

    @Test(arguments: [
        #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}"#,
        #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}}]}"#,
        #"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3.0,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0}}}"#,
        #"{"choices":[{"message":{"content":"whole","refusal":null},"finish_reason":"stop"}],"usage":null}"#,
        #" { "choices" : [ { "delta" : { "content" : "caf\u00e9 \ud83d\ude00 \"q\" \\ \/" } } ] } "#,
        #"{"choices":[{"delta":{"content":"first"}}],"choices":null}"#,
        #"{"choices":[{"delta":{"content":null,"tool_calls":null},"finish_reason":"length","extra":{"deep":[1,2.5e3,true,false,null,{"x":"y"}]}}]}"#,
        #"{"model":"modèle \u00e9","id":"a\"b","x":"\\","choices":[]}"#,
        #"{}"#,
    ])
    func readsWhatTheTreeReads(_ text: String) throws {
        let expected = try #require(Self.viaTree(text))
        #expect(Self.fast(text) == expected)
        #expect(try ChatChunk(parsing: text.utf8) == expected)
    }

    @Test(arguments: [
        #"{"error":{"message":"overloaded"}}"#,
        #"{"choices":"x"}"#,
        #"{"choices":[{"delta":{"content":5}}]}"#,
        #"{"usage":{"prompt_tokens":"3"}}"#,
        #"{"usage":{"prompt_tokens":1.5}}"#,
        #"{"choices":[],}"#,
        #"{"choices":[] "usage":null}"#,
        #"{"skipped":[1,],"choices":[]}"#,
        #"{"choices":[]} trailing"#,
        #"{"choices":[{"delta":{"content":"a"}},]}"#,
        #"{"s":"\x"}"#,
        "[]", "{", "", "null",
    ])
    func givesUpWhereTheTreeFailsOrAnErrorCame(_ text: String) {
        #expect(Self.fast(text) == nil)
    }

    @Test func aKeyWithAnEscapeOrBeyondASCIIIsReadThroughTheTree() throws {
        for text in [#"{"ch\u006fices":[{"delta":{"content":"x"}}]}"#, #"{"choices":[{"delta":{"content":"x"}}],"clé":1}"#] {
            #expect(Self.fast(text) == nil)
            let expected = try #require(Self.viaTree(text))
            #expect(expected.choices?.first?.delta?.content == "x")
            #expect(try ChatChunk(parsing: text.utf8) == expected)
        }
    }

    @Test func invalidUTF8InAStringReadsAsTheReplacementCharacter() throws {
        // A stray 0xFF inside the content, and a lone continuation byte in a skipped string:
        // read as U+FFFD (as a decoded line always was), not refused as "not JSON".
        let bytes = Array(#"{"model":"m"#.utf8) + [0x80] + Array(#"","choices":[{"delta":{"content":"a"#.utf8)
            + [0xFF] + Array(#"b"}}]}"#.utf8)
        #expect(throws: (any Error).self) { try JSONText.parse(bytes) }  // the strict parser refuses the raw bytes
        let chunk = try ChatCompletionsClient.decodeChunk(bytes)
        #expect(chunk.choices?.first?.delta?.content == "a\u{FFFD}b")
        #expect(try ChatChunk(parsing: bytes) == chunk)
        // The same bytes outside any string are still not JSON.
        #expect(throws: UpstreamError.self) { try ChatCompletionsClient.decodeChunk([0xFF] + Array("{}".utf8)) }
    }

    @Test func readingANestedSkippedValueStillBoundsItsDepth() {
        let deep = #"{"x":"# + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + #","choices":[]}"#
        #expect(Self.fast(deep) == nil)
        #expect(Self.viaTree(deep) == nil)
    }

    @Test func linesComeOutOfBuffersSplitAnywhere() {
        var splitter = SSELineSplitter()
        var lines: [String] = []
        for piece in ["data: {\"a\"", ":1}\r", "\n\ndata: [DO", "NE]\n", "", "partial"] {
            splitter.append(ByteBuffer(string: piece))
            while let line = splitter.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
        }
        #expect(lines == ["data: {\"a\":1}", "", "data: [DONE]"])
        #expect(splitter.push(ByteBuffer(string: " line\n")) == ["partial line"])
        #expect(splitter.push(ByteBuffer(string: "\n\r\n")) == ["", ""])
    }
}
