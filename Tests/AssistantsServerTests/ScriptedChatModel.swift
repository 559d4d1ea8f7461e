import Foundation
import NIOConcurrencyHelpers
@testable import AssistantsServer

/// A model scripted in-process, for tests of the engine itself: each call takes the next reply
/// (or the default), streams it delta by delta, and every request is recorded.
final class ScriptedChatModel: ChatModel {
    /// One scripted answer.
    struct Reply: Sendable {
        var deltas: [ChatDelta]
        var finishReason = "stop"
        /// Waited before each delta (a slow model); a cancelled call stops there.
        var delay: Duration = .zero
        var failure: UpstreamError?

        static func text(_ content: String, pieces: Int = 1, delay: Duration = .zero) -> Reply {
            let characters = Array(content)
            let size = max(1, (characters.count + pieces - 1) / max(pieces, 1))
            let chunks = stride(from: 0, to: characters.count, by: size).map { String(characters[$0..<min($0 + size, characters.count)]) }
            return Reply(deltas: chunks.map { .text($0) }, delay: delay)
        }

        static func toolCall(_ name: String, _ arguments: String, id: String = "call_" + UUID().uuidString.prefix(12)) -> Reply {
            Reply(deltas: [.toolCall(index: 0, id: id, name: name, arguments: arguments)], finishReason: "tool_calls")
        }

        static func failing(_ message: String) -> Reply {
            Reply(deltas: [], failure: UpstreamError(code: "server_error", message: message, retryable: false))
        }
    }

    private struct State {
        var replies: [Reply] = []
        var requests: [ChatRequest] = []
        var cancelled = 0
    }

    private let state = NIOLockedValueBox(State())
    let fallback: Reply

    init(default fallback: Reply = .text("ok")) {
        self.fallback = fallback
    }

    func enqueue(_ replies: Reply...) {
        state.withLockedValue { $0.replies += replies }
    }

    var requests: [ChatRequest] { state.withLockedValue { $0.requests } }
    var cancelledCalls: Int { state.withLockedValue { $0.cancelled } }

    /// Waits until `count` calls have been made.
    func waitForRequests(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [ChatRequest] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let seen = requests
            if seen.count >= count { return seen }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ScriptError(description: "expected \(count) model calls, saw \(requests.count)")
    }

    func complete(_ request: ChatRequest, endpoint: UpstreamEndpoint, onDelta: (ChatDelta) async throws -> Void) async throws -> ChatTurn {
        let reply = state.withLockedValue { state -> Reply in
            state.requests.append(request)
            return state.replies.isEmpty ? fallback : state.replies.removeFirst()
        }
        if let failure = reply.failure { throw failure }
        var turn = ChatTurn()
        do {
            for delta in reply.deltas {
                if reply.delay > .zero { try await Task.sleep(for: reply.delay) }
                try Task.checkCancellation()
                switch delta {
                case .text(let text):
                    turn.text += text
                case .toolCall(_, let id, let name, let arguments):
                    turn.toolCalls.append(ToolCall(id: id ?? "call_x", name: name ?? "", arguments: arguments))
                }
                try await onDelta(delta)
            }
        } catch is CancellationError {
            state.withLockedValue { $0.cancelled += 1 }
            throw CancellationError()
        }
        turn.finishReason = reply.finishReason
        turn.usage = Usage(prompt_tokens: 10, completion_tokens: 5)
        return turn
    }
}

/// A test's own failure with a message.
struct ScriptError: Error, CustomStringConvertible {
    let description: String
}
