import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Calls an OpenAI-compatible `POST /chat/completions` with `stream: true` and hands each
/// fragment to the caller as it arrives. Retries 429, 5xx and connection errors with backoff,
/// but only before anything has been streamed.
final class ChatCompletionsClient: Sendable {
    struct RetryPolicy: Sendable {
        var attempts = 3
        var baseDelay: Duration = .milliseconds(500)
    }

    let http: HTTPClient
    let retry: RetryPolicy
    let logger: Logger

    init(http: HTTPClient, retry: RetryPolicy, logger: Logger) {
        self.http = http
        self.retry = retry
        self.logger = logger
    }

    /// Runs one model call. `onDelta` sees each fragment in order; the result is the whole turn.
    func complete(
        body: [String: JSONValue], endpoint: UpstreamEndpoint,
        onDelta: (ChatDelta) async throws -> Void
    ) async throws -> ChatTurn {
        var payload = body
        payload["model"] = .string(endpoint.upstreamModel)
        payload["stream"] = true
        payload["stream_options"] = ["include_usage": true]
        let bytes = JSONText.bytes(.object(payload))
        var attempt = 0
        while true {
            attempt += 1
            var delivered = false
            do {
                return try await once(bytes: bytes, endpoint: endpoint) { delta in
                    delivered = true
                    try await onDelta(delta)
                }
            } catch let error as UpstreamError where error.retryable && !delivered && attempt < retry.attempts {
                logger.warning("upstream call failed, retrying", metadata: ["attempt": "\(attempt)", "error": "\(error.message)"])
                try await Task.sleep(for: retry.baseDelay * (1 << (attempt - 1)))
            }
        }
    }

    private func once(bytes: [UInt8], endpoint: UpstreamEndpoint, onDelta: (ChatDelta) async throws -> Void) async throws -> ChatTurn {
        var request = HTTPClientRequest(url: endpoint.baseURL + "/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let key = endpoint.apiKey, !key.isEmpty {
            request.headers.add(name: "Authorization", value: "Bearer \(key)")
        }
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(600))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw UpstreamError(code: "server_error", message: "The model upstream could not be reached: \(error).", retryable: true)
        }
        guard response.status == .ok else {
            let body = try? await response.body.collect(upTo: 64 * 1024)
            let text = body.map { String(buffer: $0) } ?? ""
            let status = response.status.code
            let excerpt = String(text.prefix(500))
            if status == 429 {
                throw UpstreamError(code: "rate_limit_exceeded", message: "The model upstream answered 429 (rate limited): \(excerpt)", retryable: true)
            }
            throw UpstreamError(code: "server_error", message: "The model upstream answered \(status): \(excerpt)",
                                retryable: status >= 500 || status == 408)
        }
        var accumulator = TurnAccumulator()
        let contentType = response.headers.first(name: "content-type") ?? ""
        if contentType.contains("application/json") {
            // An upstream that ignores `stream: true` and answers in one piece.
            let body = try await response.body.collect(upTo: 64 * 1024 * 1024)
            let chunk = try decodeChunk(body.readableBytesView)
            try await accumulator.add(chunk, onDelta: onDelta)
            return accumulator.turn
        }
        var lines = SSELineSplitter()
        do {
            for try await buffer in response.body {
                for line in lines.push(buffer) {
                    guard line.hasPrefix("data:") else { continue }
                    let data = line.dropFirst(5).drop(while: { $0 == " " })
                    if data == "[DONE]" { return accumulator.turn }
                    try await accumulator.add(try decodeChunk(data.utf8), onDelta: onDelta)
                }
            }
        } catch let error as UpstreamError {
            throw error
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw UpstreamError(code: "server_error", message: "The model upstream's stream broke off: \(error).", retryable: true)
        }
        return accumulator.turn
    }

    private func decodeChunk(_ bytes: some Collection<UInt8>) throws -> ChatChunk {
        guard let json = try? JSONText.parse(bytes) else {
            throw UpstreamError(code: "server_error", message: "The model upstream sent a chunk that is not JSON.", retryable: false)
        }
        if let message = json["error"]?["message"]?.stringValue {
            throw UpstreamError(code: "server_error", message: "The model upstream reported an error: \(message)", retryable: false)
        }
        guard let chunk = try? ChatChunk(json: json) else {
            throw UpstreamError(code: "server_error", message: "The model upstream sent a chunk that is not a chat completion.", retryable: false)
        }
        return chunk
    }
}

/// Builds a `ChatTurn` from chunks and turns each into the deltas the engine streams.
struct TurnAccumulator {
    private(set) var turn = ChatTurn()
    private var callsByIndex: [Int: Int] = [:]

    mutating func add(_ chunk: ChatChunk, onDelta: (ChatDelta) async throws -> Void) async throws {
        if let usage = chunk.usage {
            turn.usage = Usage(prompt_tokens: usage.prompt_tokens ?? 0, completion_tokens: usage.completion_tokens ?? 0)
        }
        for choice in chunk.choices ?? [] {
            if let reason = choice.finish_reason { turn.finishReason = reason }
            guard let delta = choice.delta ?? choice.message else { continue }
            if let content = delta.content, !content.isEmpty {
                turn.text += content
                try await onDelta(.text(content))
            }
            for call in delta.tool_calls ?? [] {
                let index = call.index ?? (callsByIndex.count)
                let arguments = call.function?.arguments ?? ""
                if let position = callsByIndex[index] {
                    turn.toolCalls[position].function.arguments += arguments
                    if let name = call.function?.name, turn.toolCalls[position].function.name.isEmpty {
                        turn.toolCalls[position].function.name = name
                    }
                    try await onDelta(.toolCall(index: position, id: nil, name: nil, arguments: arguments))
                } else {
                    let id = call.id.flatMap { $0.isEmpty ? nil : $0 } ?? IDPrefix.call.makeID()
                    callsByIndex[index] = turn.toolCalls.count
                    turn.toolCalls.append(ToolCall(id: id, name: call.function?.name ?? "", arguments: arguments))
                    try await onDelta(.toolCall(index: turn.toolCalls.count - 1, id: id, name: call.function?.name ?? "", arguments: arguments))
                }
            }
        }
    }
}

/// Splits a byte stream into lines (LF or CRLF), keeping a partial line across buffers.
struct SSELineSplitter {
    private var pending: [UInt8] = []

    mutating func push(_ buffer: ByteBuffer) -> [String] {
        var lines: [String] = []
        for byte in buffer.readableBytesView {
            if byte == UInt8(ascii: "\n") {
                if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
                lines.append(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
            }
        }
        return lines
    }
}
