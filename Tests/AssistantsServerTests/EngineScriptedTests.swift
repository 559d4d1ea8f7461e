import Foundation
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing
@testable import AssistantsServer

/// The run engine in process, against a scripted model: the run lifecycle and what reaches the model.
@Suite struct EngineScriptedTests {
    /// A server on a fresh SQLite database (or `database`) whose model is `model`.
    static func withEngine(model: ScriptedChatModel, database: String? = nil, nodeID: String? = nil,
                           configure: (inout ServerConfiguration) -> Void = { _ in },
                           _ body: @Sendable @escaping (API) async throws -> Void) async throws {
        let directory = TestSupport.temporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.databaseURL = database ?? "sqlite://\(directory)/db.sqlite"
        configuration.dataDirectory = directory
        configuration.localModel = false
        configuration.upstreamURL = "http://scripted.invalid/v1"
        configuration.nodeID = nodeID
        configure(&configuration)
        let app = try await buildApplication(configuration: configuration, logger: TestSupport.logger, model: model)
        try await app.test(.router) { client in try await body(API(client: client)) }
    }

    /// JSON calls to the API under test.
    struct API: Sendable {
        let client: any TestClientProtocol

        @discardableResult
        func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil,
                  headers: HTTPFields = [.contentType: "application/json"], bytes: ByteBuffer? = nil) async throws -> JSONValue {
            try await client.execute(uri: uri, method: method, headers: headers, body: bytes ?? body.map { ByteBuffer(string: $0) }) { response in
                try JSONCoding.decoder.decode(JSONValue.self, from: Data(response.body.readableBytesView))
            }
        }

        func id(_ value: JSONValue) throws -> String { try #require(value["id"]?.stringValue) }

        /// Polls a run until its status is one of `statuses`.
        func wait(thread: String, run: String, for statuses: Set<String>, timeout: Duration = .seconds(20)) async throws -> JSONValue {
            let deadline = ContinuousClock.now + timeout
            var last: JSONValue = .null
            while ContinuousClock.now < deadline {
                last = try await call(.get, "/v1/threads/\(thread)/runs/\(run)")
                if let status = last["status"]?.stringValue, statuses.contains(status) { return last }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw ScriptError(description: "run \(run) did not reach \(statuses): \(last.jsonString)")
        }

        /// An assistant with `tools` (JSON array text), a thread with one message, a run with `options`.
        func startRun(tools: String = "[]", options: String = "", message: String = #""Add 2 and 3""#) async throws -> (thread: String, run: String) {
            let assistant = try id(await call(.post, "/v1/assistants", #"{"model":"scripted","tools":\#(tools)}"#))
            let thread = try id(await call(.post, "/v1/threads", #"{"messages":[{"role":"user","content":\#(message)}]}"#))
            let run = try id(await call(.post, "/v1/threads/\(thread)/runs", #"{"assistant_id":"\#(assistant)"\#(options)}"#))
            return (thread, run)
        }
    }

    /// The text of the newest message of a message list.
    static func firstText(_ list: JSONValue) -> JSONValue? {
        list["data"]?.arrayValue?.first?["content"]?.arrayValue?.first?["text"]?["value"]
    }

    static let adder = #"[{"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer"}},"required":["b"]}}}]"#

    @Test func requiresActionThenSubmit() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.toolCall("add", #"{"a": 2}"#, id: "call_add"), .text("The sum is 5."))
        try await Self.withEngine(model: model) { api in
            let (thread, run) = try await api.startRun(tools: Self.adder)
            let waiting = try await api.wait(thread: thread, run: run, for: ["requires_action", "failed"])
            #expect(waiting["status"] == "requires_action")
            let call = waiting["required_action"]?["submit_tool_outputs"]?["tool_calls"]?.arrayValue?.first
            #expect(call?["function"]?["arguments"] == #"{"a": 2}"#, "a non-strict call passes as written")
            try await api.call(.post, "/v1/threads/\(thread)/runs/\(run)/submit_tool_outputs",
                               #"{"tool_outputs":[{"tool_call_id":"call_add","output":"5"}]}"#)
            let done = try await api.wait(thread: thread, run: run, for: ["completed", "failed"])
            #expect(done["status"] == "completed")
            let second = try #require(model.requests.last)
            #expect(second.messages.last?["role"] == "tool" && second.messages.last?["content"] == "5")
            let messages = try await api.call(.get, "/v1/threads/\(thread)/messages")
            #expect(Self.firstText(messages) == "The sum is 5.")
        }
    }

    @Test func forcedToolChoiceIsReleasedAfterTheFirstCall() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.toolCall("add", #"{"a": 1}"#, id: "call_1"), .text("Done."))
        try await Self.withEngine(model: model) { api in
            let (thread, run) = try await api.startRun(tools: Self.adder, options: #","tool_choice":"required""#)
            _ = try await api.wait(thread: thread, run: run, for: ["requires_action"])
            try await api.call(.post, "/v1/threads/\(thread)/runs/\(run)/submit_tool_outputs",
                               #"{"tool_outputs":[{"tool_call_id":"call_1","output":"1"}]}"#)
            _ = try await api.wait(thread: thread, run: run, for: ["completed"])
            #expect(model.requests.map(\.toolChoice) == ["required", "auto"])
        }
    }

    @Test func cancelDuringAStreamedAnswer() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.text(String(repeating: "word ", count: 400), pieces: 400, delay: .milliseconds(20)))
        try await Self.withEngine(model: model) { api in
            let (thread, run) = try await api.startRun()
            _ = try await model.waitForRequests(1)
            try await Task.sleep(for: .milliseconds(200))
            let cancelling = try await api.call(.post, "/v1/threads/\(thread)/runs/\(run)/cancel")
            #expect(["cancelling", "cancelled"].contains(cancelling["status"]?.stringValue ?? ""))
            let ended = try await api.wait(thread: thread, run: run, for: ["cancelled", "completed", "failed"])
            #expect(ended["status"] == "cancelled")
            try await Task.sleep(for: .milliseconds(100))
            #expect(model.cancelledCalls == 1, "the model call is stopped, not left running")
        }
    }

    @Test func aRunWaitingForOutputsExpires() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.toolCall("add", #"{"a": 1}"#))
        try await Self.withEngine(model: model, configure: { $0.runExpirySeconds = 1 }) { api in
            let (thread, run) = try await api.startRun(tools: Self.adder)
            _ = try await api.wait(thread: thread, run: run, for: ["requires_action"])
            let expired = try await api.wait(thread: thread, run: run, for: ["expired"], timeout: .seconds(10))
            #expect(expired["status"] == "expired" && expired["required_action"] == .null)
        }
    }

    @Test func constrainedTurnsAreAskedAgainUntilValid() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.text("I think I should add"), .text(#"{"name": "add", "arguments": "#),
                      .text(#"{"name": "add", "arguments": {"a": 7}}"#))
        try await Self.withEngine(model: model, configure: { $0.toolConstraint = true }) { api in
            let (thread, run) = try await api.startRun(tools: Self.adder, options: #","tool_choice":"required""#)
            let waiting = try await api.wait(thread: thread, run: run, for: ["requires_action", "failed"])
            #expect(waiting["status"] == "requires_action")
            #expect(model.requests.count == 3)
            // A forced call is asked for every time.
            #expect(model.requests.allSatisfy { $0.responseFormat?["json_schema"]?["schema"] != ToolCallGuard.replySchema })
            let format = try #require(model.requests.first?.responseFormat)
            // The grammar asks only for declared properties: the `required` slip ("b") is left out.
            #expect(format["json_schema"]?["schema"]?["properties"]?["arguments"]?["required"] == nil)
            #expect(model.requests.allSatisfy { $0.tools.isEmpty })
        }
    }

    /// A small model that rambles inside its JSON until the output limit, every time: the run
    /// ends `incomplete` (max_completion_tokens), not failed, and no half-written JSON is shown.
    @Test func aConstrainedAnswerCutOffEveryTimeEndsIncomplete() async throws {
        let model = ScriptedChatModel()
        let cut = ScriptedChatModel.Reply(deltas: [.text(#"{"name": "add", "arguments": {"a": 2, "b": [3, 5, 7, 11"#)], finishReason: "length")
        model.enqueue(cut, cut, cut)
        try await Self.withEngine(model: model, configure: { $0.toolConstraint = true }) { api in
            let (thread, run) = try await api.startRun(tools: Self.adder, options: #","tool_choice":"required""#)
            let ended = try await api.wait(thread: thread, run: run, for: ["incomplete", "failed", "requires_action", "completed"])
            #expect(ended["status"] == "incomplete", "\(ended)")
            #expect(ended["incomplete_details"]?["reason"] == "max_completion_tokens")
            #expect(model.requests.count == 3)
            // The turn's message is incomplete (max_tokens), and none of the half-written JSON is in it.
            let messages = try await api.call(.get, "/v1/threads/\(thread)/messages")
            let reply = try #require(messages["data"]?.arrayValue?.first)
            #expect(reply["role"] == "assistant" && reply["status"] == "incomplete")
            #expect(reply["incomplete_details"]?["reason"] == "max_tokens")
            #expect(Self.firstText(messages) == "")
        }
    }

    @Test func anAnswerOfOnlyMarkupIsAskedAgainAsJSON() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.text(#"{"name": "add", "arguments": {"a": 7}}"#),
                      .text("<tool_call>not json</tool_call>"),
                      .text(#"{"name": "add", "arguments": "#),
                      .text(#"{"name": "reply_to_user", "message": "The sum is 7."}"#))
        try await Self.withEngine(model: model, configure: { $0.toolConstraint = true }) { api in
            let (thread, run) = try await api.startRun(tools: Self.adder)
            let waiting = try await api.wait(thread: thread, run: run, for: ["requires_action", "failed"])
            let call = try #require(waiting["required_action"]?["submit_tool_outputs"]?["tool_calls"]?.arrayValue?.first?["id"]?.stringValue)
            try await api.call(.post, "/v1/threads/\(thread)/runs/\(run)/submit_tool_outputs",
                               #"{"tool_outputs":[{"tool_call_id":"\#(call)","output":"7"}]}"#)
            let done = try await api.wait(thread: thread, run: run, for: ["completed", "failed"])
            #expect(done["status"] == "completed")
            let requests = model.requests
            #expect(requests.count == 4)
            // The answer to the tool outputs is free text first; the retry asks for a call or a
            // non-empty reply; the last try (the run does not force a call) for a reply only.
            #expect(requests[1].responseFormat == nil)
            let reply = requests[2].responseFormat?["json_schema"]?["schema"]?["anyOf"]?.arrayValue?.last
            #expect(reply?["properties"]?["message"]?["minLength"] == 1)
            #expect(requests[3].responseFormat?["json_schema"]?["schema"] == ToolCallGuard.replySchema)
            let messages = try await api.call(.get, "/v1/threads/\(thread)/messages")
            #expect(Self.firstText(messages) == "The sum is 7.")
        }
    }

    @Test func aBlankAnswerIsAskedAgain() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.text(" \n\t\u{3000} "), .text(#"{"name": "reply_to_user", "message": "Hi."}"#))
        try await Self.withEngine(model: model, configure: { $0.toolConstraint = true }) { api in
            let (thread, run) = try await api.startRun(tools: Self.adder)
            let done = try await api.wait(thread: thread, run: run, for: ["completed", "failed"])
            #expect(done["status"] == "completed")
            #expect(model.requests.count == 2, "whitespace of any kind is no answer")
            #expect(Self.firstText(try await api.call(.get, "/v1/threads/\(thread)/messages")) == "Hi.")
        }
    }

    @Test func imagePartsReachTheModel() async throws {
        let model = ScriptedChatModel()
        model.enqueue(.text("A dot."))
        try await Self.withEngine(model: model) { api in
            let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
            var body = ByteBuffer(string: "--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nvision\r\n"
                + "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dot.png\"\r\n\r\n")
            body.writeBytes(png)
            body.writeString("\r\n--B--\r\n")
            let file = try api.id(await api.call(.post, "/v1/files", headers: [.contentType: "multipart/form-data; boundary=B"], bytes: body))
            let content = #"[{"type":"text","text":"What is it?"},{"type":"image_file","image_file":{"file_id":"\#(file)"}},"#
                + #"{"type":"image_url","image_url":{"url":"https://example.invalid/a.png","detail":"low"}}]"#
            let (thread, run) = try await api.startRun(message: content)
            _ = try await api.wait(thread: thread, run: run, for: ["completed"])
            let parts = try #require(model.requests.first?.messages.last?["content"]?.arrayValue)
            #expect(parts.count == 3)
            #expect(parts[1]["image_url"]?["url"]?.stringValue == "data:image/png;base64," + Data(png).base64EncodedString())
            #expect(parts[2]["image_url"] == ["url": "https://example.invalid/a.png", "detail": "low"])
        }
    }

    @Test func aRunLeftByAStoppedServerIsResumedByItsSuccessor() async throws {
        let database = "sqlite://\(TestSupport.temporaryDirectory())/shared.sqlite"
        let first = ScriptedChatModel(default: .text(String(repeating: "slow ", count: 2000), pieces: 2000, delay: .milliseconds(10)))
        let ids = NIOLockedValueBoxHolder()
        try await Self.withEngine(model: first, database: database, nodeID: "node-a") { api in
            let started = try await api.startRun()
            ids.set(started)
            _ = try await first.waitForRequests(1)
        }
        let (thread, run) = try #require(ids.get())
        let second = ScriptedChatModel(default: .text("Resumed."))
        try await Self.withEngine(model: second, database: database, nodeID: "node-a") { api in
            let done = try await api.wait(thread: thread, run: run, for: ["completed", "failed"])
            #expect(done["status"] == "completed")
            let messages = try await api.call(.get, "/v1/threads/\(thread)/messages")
            #expect(Self.firstText(messages) == "Resumed.")
        }
    }
}

/// Carries a value out of a `@Sendable` test closure.
final class NIOLockedValueBoxHolder: Sendable {
    private let box = NIOLockedValueBox<(thread: String, run: String)?>(nil)
    func set(_ value: (thread: String, run: String)) { box.withLockedValue { $0 = value } }
    func get() -> (thread: String, run: String)? { box.withLockedValue { $0 } }
}
