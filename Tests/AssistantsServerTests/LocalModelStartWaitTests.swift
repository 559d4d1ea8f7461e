import NIOConcurrencyHelpers
import Testing
@testable import AssistantsServer

/// A call to the local model made while llama-server still loads it waits for it, instead of
/// failing on its 503; other routes are not held up, and a model that never starts fails the call.
@Suite struct LocalModelStartWaitTests {
    static let local = UpstreamEndpoint(baseURL: "http://127.0.0.1:9/v1", apiKey: nil, upstreamModel: "smollm2", contextWindow: 8192)
    static let hosted = UpstreamEndpoint(baseURL: "http://127.0.0.1:10/v1", apiKey: nil, upstreamModel: "gpt-4o", contextWindow: 128_000)

    /// A readiness that turns true when `open()` is called, and counts the waits.
    final class Readiness: Sendable {
        private let state = NIOLockedValueBox((ready: false, waits: 0))
        func open() { state.withLockedValue { $0.ready = true } }
        var waits: Int { state.withLockedValue { $0.waits } }
        func wait() async -> Bool {
            state.withLockedValue { $0.waits += 1 }
            while !state.withLockedValue({ $0.ready }) {
                if Task.isCancelled { return false }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return true
        }
    }

    @Test func aCallToTheLocalModelWaitsUntilItIsReady() async throws {
        let scripted = ScriptedChatModel(default: .text("ready now"))
        let readiness = Readiness()
        let model = LocalModelStartWait(base: scripted, localBaseURL: Self.local.baseURL, modelName: "smollm2") { await readiness.wait() }
        let call = Task { try await model.complete(ChatRequest(messages: []), endpoint: Self.local) { _ in } }
        try await Task.sleep(for: .milliseconds(100))
        #expect(scripted.requests.isEmpty, "the call reached the model before it was ready")
        readiness.open()
        #expect(try await call.value.text == "ready now")
        #expect(scripted.requests.count == 1)
    }

    @Test func otherRoutesDoNotWait() async throws {
        let scripted = ScriptedChatModel(default: .text("hosted"))
        let readiness = Readiness()
        let model = LocalModelStartWait(base: scripted, localBaseURL: Self.local.baseURL, modelName: "smollm2") { await readiness.wait() }
        #expect(try await model.complete(ChatRequest(messages: []), endpoint: Self.hosted) { _ in }.text == "hosted")
        #expect(readiness.waits == 0)
    }

    @Test func aLocalModelThatNeverStartsFailsTheCall() async throws {
        let scripted = ScriptedChatModel()
        let model = LocalModelStartWait(base: scripted, localBaseURL: Self.local.baseURL, modelName: "smollm2") { false }
        do {
            _ = try await model.complete(ChatRequest(messages: []), endpoint: Self.local) { _ in }
            Issue.record("the call did not fail")
        } catch let error as UpstreamError {
            #expect(error.code == "server_error" && error.message.contains("did not start") && !error.retryable)
        }
        #expect(scripted.requests.isEmpty)
    }
}
