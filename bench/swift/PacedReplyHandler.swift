import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One request to the bench upstream, over HTTP/1.1 or as an HTTP/2 stream (through
/// `HTTP2FramePayloadToHTTP1ServerCodec`): `GET /health`, `GET /stats`, and
/// `POST /v1/chat/completions` with `stream: true`, answered with paced `chat.completion.chunk`
/// events (see `StreamsUpstreamCommand`). Each delta is written from a `LoopTicker` callback on
/// the channel's own loop: no task, no async writer, nothing but the write itself per delta.
final class PacedReplyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// What every reply is made of, and where it counts.
    struct Settings: Sendable {
        var deltas: Int
        var interval: TimeAmount
        /// Nanoseconds; 0: each delta at its own deadline.
        var tick: UInt64
        var stats: NIOLockedValueBox<StreamsUpstreamCommand.Stats>
    }

    /// A request body larger than this is refused.
    static let maxBody = 1 << 22

    private let settings: Settings
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// The reply being streamed: its chunks, when it began, and the deltas sent.
    private var streaming: (chunks: ChunkWriter, start: NIODeadline, sent: Int)?

    init(settings: Settings) {
        self.settings = settings
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var bytes):
            guard head != nil else { return }  // after a 413: the rest of that body is dropped
            guard body.readableBytes + bytes.readableBytes <= Self.maxBody else {
                head = nil  // answered: the request's `.end`, if read in this batch, answers nothing
                body.clear()
                respond(context: context, status: .payloadTooLarge, json: #"{"error":{"message":"request body too large"}}"#)
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&bytes)
        case .end:
            guard let head else { return }
            self.head = nil
            route(context: context, head: head)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if streaming != nil {
            streaming = nil
            settings.stats.withLockedValue {
                $0.open -= 1
                $0.failed["the connection or stream closed before the reply ended", default: 0] += 1
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead) {
        switch (head.method, head.uri) {
        case (.GET, "/health"):
            respond(context: context, status: .ok, json: #"{"status":"ok"}"#)
        case (.GET, "/stats"):
            let stats = settings.stats.withLockedValue { $0 }
            let json = (try? JSONEncoder().encode(stats)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            respond(context: context, status: .ok, json: json)
        case (.POST, "/v1/chat/completions"):
            startReply(context: context, version: head.version)
        default:
            respond(context: context, status: .notFound, json: #"{"error":{"message":"not found"}}"#)
        }
    }

    /// A whole JSON response.
    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, json: String) {
        var headers = HTTPHeaders([("content-type", "application/json")])
        headers.add(name: "content-length", value: String(json.utf8.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: json)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func startReply(context: ChannelHandlerContext, version: HTTPVersion) {
        let fields = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        guard fields["stream"] as? Bool == true else {
            respond(context: context, status: .badRequest, json: #"{"error":{"message":"this upstream only streams"}}"#)
            return
        }
        let chunks = ChunkWriter(created: Int(Date().timeIntervalSince1970), model: (fields["model"] as? String) ?? "bench")
        settings.stats.withLockedValue { $0.open += 1; $0.most_open = max($0.most_open, $0.open) }
        let headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(
            chunks.chunk(#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#)))), promise: nil)
        streaming = (chunks, .now(), 0)
        next(context: context)
    }

    /// Waits for the next delta's tick, or ends the reply once every delta is out.
    private func next(context: ChannelHandlerContext) {
        guard let streaming else { return }
        guard streaming.sent < settings.deltas else {
            finish(context: context, chunks: streaming.chunks)
            return
        }
        let due = streaming.start + .nanoseconds(settings.interval.nanoseconds * Int64(streaming.sent + 1))
        LoopTicker.current(on: context.eventLoop, tick: settings.tick).at(due) { [self] in
            guard var current = self.streaming else { return }  // the channel closed meanwhile
            current.sent += 1
            self.streaming = current
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(current.chunks.stamped(wallNanos())))), promise: nil)
            next(context: context)
        }
    }

    private func finish(context: ChannelHandlerContext, chunks: ChunkWriter) {
        streaming = nil
        let deltas = settings.deltas
        context.write(wrapOutboundOut(.body(.byteBuffer(chunks.chunk(#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#)))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(chunks.chunk(
            "[]", usage: #"{"prompt_tokens":10,"completion_tokens":\#(deltas),"total_tokens":\#(10 + deltas)}"#)))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: [DONE]\n\n")))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        settings.stats.withLockedValue { $0.open -= 1; $0.completed += 1 }
    }
}

/// One reply's `chat.completion.chunk` SSE events as bytes. The content chunks, one per delta,
/// are the costly ones: their fixed text around the stamp is built once per reply and the stamp's
/// digits are written straight into the buffer, with no string interpolation per delta.
struct ChunkWriter: Sendable {
    private let created: Int
    private let model: String
    /// `data: {"id":...,"choices":[{"index":0,"delta":{"content":"<t=` and what follows the digits.
    private let stampPrefix: ByteBuffer
    private static let stampSuffix: StaticString = #">"},"finish_reason":null}]}\#n\#n"#

    init(created: Int, model: String) {
        self.created = created
        self.model = model
        stampPrefix = ByteBuffer(string: #"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":\#(created),"model":"\#(model)","choices":[{"index":0,"delta":{"content":"<t="#)
    }

    /// A chunk with these `choices` (JSON), and `usage` (JSON) if given.
    func chunk(_ choices: String, usage: String? = nil) -> ByteBuffer {
        var json = #"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":\#(created),"model":"\#(model)","choices":\#(choices)"#
        if let usage { json += #","usage":\#(usage)"# }
        return ByteBuffer(string: "data: \(json)}\n\n")
    }

    /// The content chunk `<t=NANOS>`.
    func stamped(_ nanos: Int64) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: stampPrefix.readableBytes + 20 + Self.stampSuffix.utf8CodeUnitCount)
        buffer.writeImmutableBuffer(stampPrefix)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 24 ASCII digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var value = nanos.magnitude
            var start = scratch.count
            repeat {
                start -= 1
                scratch[start] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            } while value > 0
            if nanos < 0 {
                start -= 1
                scratch[start] = UInt8(ascii: "-")
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[start...]))
        }
        buffer.writeStaticString(Self.stampSuffix)
        return buffer
    }
}

/// Runs callbacks at whole ticks on one event loop, with one NIO timer per tick instead of one
/// per reply and delta (NIO keeps its timers in a heap: at thousands of replies a loop, its upkeep
/// was a tenth of the upstream's CPU). Each instance belongs to one loop's thread and is only
/// touched there (hence `@unchecked`).
final class LoopTicker: @unchecked Sendable {
    private static let perThread = ThreadSpecificVariable<LoopTicker>()
    private let loop: any EventLoop
    private let tick: UInt64
    /// Callbacks by tick number (the tick's start, in uptime nanoseconds, over `tick`).
    private var due: [UInt64: [() -> Void]] = [:]

    private init(loop: any EventLoop, tick: UInt64) {
        self.loop = loop
        self.tick = tick
    }

    /// The ticker of `loop`, whose thread this must be called on.
    static func current(on loop: any EventLoop, tick: UInt64) -> LoopTicker {
        loop.preconditionInEventLoop()
        if let current = perThread.currentValue, current.tick == tick, current.loop === loop { return current }
        let ticker = LoopTicker(loop: loop, tick: tick)
        perThread.currentValue = ticker
        return ticker
    }

    /// Calls `callback` on the loop at `deadline`, rounded up to a whole tick (none: exactly).
    func at(_ deadline: NIODeadline, _ callback: @escaping () -> Void) {
        guard tick > 0 else {
            loop.assumeIsolated().scheduleTask(deadline: deadline, callback)
            return
        }
        let slot = (deadline.uptimeNanoseconds + tick - 1) / tick
        let first = due[slot] == nil
        due[slot, default: []].append(callback)
        guard first else { return }
        loop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(slot * tick)) { [self] in
            for callback in due.removeValue(forKey: slot) ?? [] { callback() }
        }
    }
}
