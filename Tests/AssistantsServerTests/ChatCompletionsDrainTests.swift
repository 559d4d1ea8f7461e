import AsyncHTTPClient
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing
@testable import AssistantsServer

/// A model call reads the upstream's reply to its end after `[DONE]` instead of dropping it: a
/// dropped body resets an HTTP/2 stream (upstreams close a connection past their rapid-reset
/// limit, with every call on it) and closes an HTTP/1.1 connection.
@Suite struct ChatCompletionsDrainTests {
    /// The upstream writes once more 200 ms after `[DONE]`: that write fails if the client let go
    /// of the reply (over HTTP/1.1 the connection is closed), and succeeds if it read on.
    @Test func replyIsReadToItsEndAfterDone() async throws {
        let lateWrite = NIOLockedValueBox<Bool?>(nil)
        let router = Router()
        router.post("v1/chat/completions") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: #"data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}"# + "\n\n"))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await Task.sleep(for: .milliseconds(200))
                do {
                    try await writer.write(ByteBuffer(string: ": the end\n\n"))
                    try await writer.finish(nil)
                    lateWrite.withLockedValue { $0 = true }
                } catch {
                    lateWrite.withLockedValue { $0 = false }
                    throw error
                }
            })
        }
        let upstream = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await upstream.test(.live) { client in
            let port = try #require(client.port)
            let endpoint = UpstreamEndpoint(baseURL: "http://127.0.0.1:\(port)/v1", apiKey: nil, upstreamModel: "m", contextWindow: 1000)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let chat = ChatCompletionsClient(http: http, retry: .init(attempts: 1), logger: TestSupport.logger)
            let turn = try await chat.complete(ChatRequest(messages: []), endpoint: endpoint) { _ in }
            #expect(turn.text == "hi")
            // The call returned after the upstream's last write, which went through.
            #expect(lateWrite.withLockedValue { $0 } == true)
            try await http.shutdown()
        }
    }
}
