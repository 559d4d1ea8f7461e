import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Tracing

/// Calls an OpenAI-compatible `POST /chat/completions` with `stream: true` and hands each
/// fragment to the caller as it arrives. Maps a `ChatRequest` to each route's dialect (token
/// limit parameter, sampling on reasoning models). Retries 429, 5xx and connection errors with
/// jittered backoff, honouring `Retry-After`, but only before anything has been streamed.
final class ChatCompletionsClient: ChatModel {
    struct RetryPolicy: Sendable {
        var attempts = 3
        var baseDelay: Duration = .milliseconds(500)
        /// The longest wait a `Retry-After` may ask for; a longer one is cut to it.
        var maxDelay: Duration = .seconds(30)

        /// The wait before try `attempt + 1`: the upstream's `Retry-After` when it sent one,
        /// else the doubling backoff with jitter (between half and all of it).
        func delay(attempt: Int, retryAfter: Duration?) -> Duration {
            if let retryAfter { return min(retryAfter, maxDelay) }
            let backoff = baseDelay * (1 << (attempt - 1))
            return min(backoff * Double.random(in: 0.5...1.0), maxDelay)
        }

        /// `Retry-After` as seconds or an HTTP date (RFC 9110).
        static func parseRetryAfter(_ text: String) -> Duration? {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if let seconds = Double(trimmed), seconds >= 0 { return .milliseconds(Int(seconds * 1000)) }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            guard let date = formatter.date(from: trimmed) else { return nil }
            return .milliseconds(max(0, Int(date.timeIntervalSinceNow * 1000)))
        }
    }

    let clients: UpstreamHTTPClients
    let retry: RetryPolicy
    let logger: Logger
    /// Each route's cap on concurrent calls: a call past it waits for a turn (`UpstreamGates`).
    let gates: UpstreamGates

    convenience init(http: HTTPClient, retry: RetryPolicy, logger: Logger, gates: UpstreamGates = UpstreamGates()) {
        self.init(clients: UpstreamHTTPClients(http), retry: retry, logger: logger, gates: gates)
    }

    init(clients: UpstreamHTTPClients, retry: RetryPolicy, logger: Logger, gates: UpstreamGates = UpstreamGates()) {
        self.clients = clients
        self.retry = retry
        self.logger = logger
        self.gates = gates
    }

    /// The request body in the upstream's dialect.
    static func body(for request: ChatRequest, endpoint: UpstreamEndpoint) -> [String: JSONValue] {
        var body: [String: JSONValue] = [
            "model": .string(endpoint.upstreamModel), "messages": .array(request.messages),
            "stream": true, "stream_options": ["include_usage": true],
        ]
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools)
            if let choice = request.toolChoice { body["tool_choice"] = choice }
            if let parallel = request.parallelToolCalls { body["parallel_tool_calls"] = .bool(parallel) }
        }
        // Reasoning models refuse sampling settings.
        if !endpoint.reasoning {
            if let temperature = request.temperature { body["temperature"] = .double(temperature) }
            if let topP = request.topP { body["top_p"] = .double(topP) }
        }
        if let format = request.responseFormat { body["response_format"] = format }
        if let effort = request.reasoningEffort { body["reasoning_effort"] = .string(effort) }
        if let limit = request.maxOutputTokens { body[endpoint.tokenLimitParameter] = .int(limit) }
        return body
    }

    /// One model call in its own span (model, route, tokens); the upstream request carries its `traceparent`.
    func complete(_ request: ChatRequest, endpoint: UpstreamEndpoint, onDelta: (ChatDelta) async throws -> Void) async throws -> ChatTurn {
        try await withSpan("chat \(endpoint.upstreamModel)", ofKind: .client) { span in
            span.attributes["gen_ai.operation.name"] = "chat"
            span.attributes["gen_ai.request.model"] = endpoint.upstreamModel
            span.attributes["assistants.upstream.route"] = endpoint.metricsRoute
            let turn = try await completeWithRetries(request, endpoint: endpoint, onDelta: onDelta)
            if let usage = turn.usage {
                span.attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
                span.attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
            }
            return turn
        }
    }

    private func completeWithRetries(_ request: ChatRequest, endpoint: UpstreamEndpoint,
                                     onDelta: (ChatDelta) async throws -> Void) async throws -> ChatTurn {
        let bytes = JSONText.bytes(.object(Self.body(for: request, endpoint: endpoint)))
        let route = endpoint.metricsRoute
        let started = ContinuousClock.now
        var firstToken: Duration?
        var attempt = 0
        while true {
            attempt += 1
            var delivered = false
            do {
                let turn = try await gates.withPermit(for: endpoint) {
                    try await once(bytes: bytes, endpoint: endpoint) { delta in
                        if !delivered { firstToken = .now - started }
                        delivered = true
                        try await onDelta(delta)
                    }
                }
                AppMetrics.modelCall(route: route, outcome: "ok", duration: .now - started, firstToken: firstToken)
                if let usage = turn.usage {
                    AppMetrics.tokens(model: endpoint.upstreamModel, prompt: usage.prompt_tokens, completion: usage.completion_tokens)
                }
                return turn
            } catch let error as UpstreamError where error.retryable && !delivered && attempt < retry.attempts {
                AppMetrics.modelRetry(route: route)
                let delay = retry.delay(attempt: attempt, retryAfter: error.retryAfter)
                logger.warning("upstream call failed, retrying", metadata: [
                    "attempt": "\(attempt)", "error": "\(error.message)", "delay_ms": "\(delay.nanoseconds / 1_000_000)",
                ])
                try await Task.sleep(for: delay)
            } catch {
                let outcome = (error as? UpstreamError)?.code ?? (error is CancellationError ? "cancelled" : "error")
                AppMetrics.modelCall(route: route, outcome: outcome, duration: .now - started, firstToken: firstToken)
                throw error
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
        let http = clients.current
        // W3C traceparent of the model call's span. AsyncHTTPClient adds it itself when it traces
        // (with the tracer bootstrapped before it was made); else it is added here.
        if http.tracer == nil, let context = ServiceContext.current {
            InstrumentationSystem.instrument.inject(context, into: &request.headers, using: HTTPHeadersInjector())
        }
        let response: HTTPClientResponse
        do {
            // Sending the request goes deep into AsyncHTTPClient: in a child task, so that the
            // run's task, which reads the answer for as long as it streams, does not keep those
            // frames (see `inChildTask`); cancelling the body's reading cancels the request.
            response = try await inChildTask { try await http.execute(request, timeout: .seconds(600)) }
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
            let retryAfter = status == 429 || status == 503 ? response.headers.first(name: "retry-after").flatMap(RetryPolicy.parseRetryAfter) : nil
            if status == 429 {
                throw UpstreamError(code: "rate_limit_exceeded", message: "The model upstream answered 429 (rate limited): \(excerpt)",
                                    retryable: true, retryAfter: retryAfter)
            }
            throw UpstreamError(code: "server_error", message: "The model upstream answered \(status): \(excerpt)",
                                retryable: status >= 500 || status == 408, retryAfter: retryAfter)
        }
        var accumulator = TurnAccumulator()
        let contentType = response.headers.first(name: "content-type") ?? ""
        if contentType.contains("application/json") {
            // An upstream that ignores `stream: true` and answers in one piece.
            let body = try await response.body.collect(upTo: 64 * 1024 * 1024)
            let chunk = try Self.decodeChunk(body.readableBytesView)
            try await accumulator.add(chunk, onDelta: onDelta)
            return accumulator.turn
        }
        var lines = SSELineSplitter()
        /// What the run's own handling of a delta threw (its store write, a lost lease): not the upstream's fault.
        struct HandlerFailure: Error { var error: any Error }
        do {
            var body = response.body.makeAsyncIterator()
            while let buffer = try await body.next() {
                lines.append(buffer)
                while let line = lines.nextLine() {
                    guard line.starts(with: "data:".utf8) else { continue }
                    let data = line.dropFirst(5).drop(while: { $0 == UInt8(ascii: " ") })
                    if data.elementsEqual("[DONE]".utf8) {
                        // The body's end follows at once: read on to it. Dropping the body here
                        // resets an HTTP/2 stream, and upstreams count resets against their
                        // rapid-reset limit (200 in 30 s in swift-nio-http2), past which they
                        // close the connection with every call on it; over HTTP/1.1 it costs the
                        // connection. A failure past [DONE] does not spoil the complete turn.
                        do { while try await body.next() != nil {} } catch { if Task.isCancelled { throw CancellationError() } }
                        return accumulator.turn
                    }
                    try await accumulator.add(try Self.decodeChunk(data)) { delta in
                        do { try await onDelta(delta) } catch { throw HandlerFailure(error: error) }
                    }
                }
            }
        } catch let error as UpstreamError {
            throw error
        } catch let failure as HandlerFailure {
            throw failure.error
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw UpstreamError(code: "server_error", message: "The model upstream's stream broke off: \(error).", retryable: true)
        }
        return accumulator.turn
    }

    /// One chunk (or a whole answer) as the engine reads it, or the upstream's error.
    static func decodeChunk(_ bytes: some Collection<UInt8>) throws -> ChatChunk {
        // A well-formed chunk is read in place; anything else through the tree, for its error.
        if let chunk = bytes.withContiguousStorageIfAvailable(ChatChunk.read) ?? nil { return chunk }
        // Invalid UTF-8 inside a string reads as U+FFFD, as a text it always has.
        guard let json = try? JSONText.parse(String(decoding: bytes, as: UTF8.self)) else {
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

/// Splits a byte stream into lines (LF or CRLF), keeping a partial line across buffers. The
/// upstream's reader takes each line's bytes in place (`append`, then `nextLine` until nil);
/// `push` gives them as strings.
struct SSELineSplitter {
    /// The bytes not yet returned in a line, from `start` on.
    private var bytes: [UInt8] = []
    private var start = 0
    /// Where the search for the next LF resumes: the bytes before it hold none.
    private var searched = 0

    /// Adds a buffer's bytes after what is pending.
    mutating func append(_ buffer: ByteBuffer) {
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            (start, searched) = (0, 0)
        } else if start > 0 {
            bytes.removeFirst(start)
            (searched, start) = (searched - start, 0)
        }
        bytes.append(contentsOf: buffer.readableBytesView)
    }

    /// The next complete line, without its LF or CRLF; nil when only a partial line (or nothing) is pending.
    mutating func nextLine() -> ArraySlice<UInt8>? {
        guard let newline = bytes[searched...].firstIndex(of: UInt8(ascii: "\n")) else {
            searched = bytes.count
            return nil
        }
        var end = newline
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = bytes[start..<end]
        start = newline + 1
        searched = start
        return line
    }

    mutating func push(_ buffer: ByteBuffer) -> [String] {
        append(buffer)
        var lines: [String] = []
        while let line = nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
        return lines
    }
}
