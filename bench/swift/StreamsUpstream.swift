import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A slow OpenAI-compatible upstream for bench/streams.sh: every streamed chat completion gets
/// a role chunk at once, then `deltas` content chunks, one every `interval` seconds after the
/// stream began (rounded up to the next `tick-ms`, waited for on the reply's event loop), each
/// `<t=NANOS>` (the wall clock just before it is written: the driver
/// subtracts it from the time it reads the delta), then a finish chunk, a usage chunk and
/// `data: [DONE]`. `GET /health`; `GET /stats` (streams open now, most at once, completed, failed
/// by error, and over TLS the connections by negotiated protocol). Plain HTTP/1.1 by default; with
/// `--tls-cert`/`--tls-key`, HTTPS offering h2 and http/1.1 (`UpstreamTLSChannel`), so that the
/// server multiplexes its calls over a few connections, as with a hosted upstream.
struct StreamsUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "streams-upstream",
                                                    abstract: "A slow streaming chat-completions upstream.")

    @Option(help: "The loopback port to listen on.") var port: Int
    @Option(help: "Content chunks per reply.") var deltas = 60
    @Option(help: "Seconds between chunks.") var interval = 1.0
    @Option(help: "A PEM certificate chain: serve HTTPS (h2 or http/1.1 by ALPN) instead of HTTP/1.1.") var tlsCert: String?
    @Option(help: "The PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "HTTP/2: the concurrent streams a connection may carry.") var maxStreams = 100_000
    @Option(help: "Each delta waits for the next whole tick (ms; 0: exact), so that a loop sends the deltas due in one tick in one wake-up (TickPacer).")
    var tickMs = 1

    /// What the upstream has served.
    struct Stats: Codable {
        var open = 0
        var most_open = 0
        var completed = 0
        /// Replies that ended early, by error (the server went away, or a write failed).
        var failed: [String: Int] = [:]
        /// Over TLS: connections accepted, by negotiated protocol (`h2`, `http/1.1`).
        var connections: [String: Int]?
    }

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard tickMs >= 0 else { throw ValidationError("--tick-ms: 0 or more") }
    }

    func run() async throws {
        let stats = NIOLockedValueBox(Stats(connections: tlsCert == nil ? nil : [:]))
        let deltas = self.deltas
        let interval = TimeAmount.nanoseconds(Int64(self.interval * 1e9))
        let tick = UInt64(max(tickMs, 0)) * 1_000_000
        let router = Router()
        router.get("/health") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"],
                                                 body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))) }
        router.get("/stats") { _, _ in
            let body = try JSONEncoder().encode(stats.withLockedValue { $0 })
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.post("/v1/chat/completions") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 22)
            let fields = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            guard fields["stream"] as? Bool == true else {
                return Response(status: .badRequest, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"this upstream only streams"}}"#)))
            }
            let model = (fields["model"] as? String) ?? "bench"
            let chunks = ChunkWriter(created: Int(Date().timeIntervalSince1970), model: model)
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                stats.withLockedValue { $0.open += 1; $0.most_open = max($0.most_open, $0.open) }
                defer { stats.withLockedValue { $0.open -= 1 } }
                do {
                    try await writer.write(chunks.chunk(#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#))
                    let start = NIODeadline.now()
                    for k in 1...max(deltas, 1) where k <= deltas {
                        // On this task's own event loop: no Dispatch timer, and the task stays there.
                        try await TickPacer.sleep(until: start + .nanoseconds(interval.nanoseconds * Int64(k)), tick: tick)
                        try await writer.write(chunks.stamped(wallNanos()))
                    }
                    try await writer.write(chunks.chunk(#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#))
                    try await writer.write(chunks.chunk("[]", usage: #"{"prompt_tokens":10,"completion_tokens":\#(deltas),"total_tokens":\#(10 + deltas)}"#))
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                    stats.withLockedValue { $0.completed += 1 }
                } catch {
                    stats.withLockedValue { $0.failed[String("\(error)".prefix(80)), default: 0] += 1 }
                    throw error
                }
            })
        }
        let openFiles = raiseOpenFiles()
        let configuration = ApplicationConfiguration(address: .hostname("127.0.0.1", port: port), backlog: 4096)
        var server = HTTPServerBuilder.http1()
        if let tlsCert, let tlsKey {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tlsCert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem)))
            let maxStreams = self.maxStreams
            server = HTTPServerBuilder { responder in
                try UpstreamTLSChannel(tls: tls, maxConcurrentStreams: maxStreams, windowSize: 1 << 20, negotiated: { version in
                    stats.withLockedValue { $0.connections?[version, default: 0] += 1 }
                }, responder: responder)
            }
        }
        let app = Application(router: router, server: server, configuration: configuration)
        let scheme = tlsCert == nil ? "HTTP/1.1" : "HTTPS (h2 up to \(maxStreams) streams a connection, or http/1.1)"
        printFlushed("streams upstream on 127.0.0.1:\(port), \(scheme): \(deltas) deltas every \(self.interval) s, open files \(openFiles)")
        try await app.runService()
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

/// Wakes the replies sleeping on one event loop at whole ticks, with one NIO timer per tick
/// instead of one per reply and delta (NIO keeps its timers in a heap: at thousands of replies a
/// loop, its upkeep was a tenth of the upstream's CPU). A sleeper resumes on the loop it slept on.
/// Each instance belongs to one loop's thread and is only touched there (hence `@unchecked`).
final class TickPacer: @unchecked Sendable {
    private static let perThread = ThreadSpecificVariable<TickPacer>()
    private let loop: any EventLoop
    private let tick: UInt64
    /// Sleepers by tick number (the tick's start, in uptime nanoseconds, over `tick`).
    private var sleepers: [UInt64: [UnsafeContinuation<Void, Never>]] = [:]

    private init(loop: any EventLoop, tick: UInt64) {
        self.loop = loop
        self.tick = tick
    }

    /// Sleeps until `deadline` rounded up to a whole `tick` (ns; 0: `deadline` itself); throws
    /// `CancellationError` on waking if the task was cancelled meanwhile.
    static func sleep(until deadline: NIODeadline, tick: UInt64) async throws {
        guard tick > 0, MultiThreadedEventLoopGroup.currentEventLoop != nil else {
            try await sleepOnEventLoop(until: deadline)
            return
        }
        await withUnsafeContinuation { add($0, slot: (deadline.uptimeNanoseconds + tick - 1) / tick, tick: tick) }
        try Task.checkCancellation()
    }

    /// Called synchronously on the sleeping task's thread: hands the sleeper to that loop's pacer.
    private static func add(_ sleeper: UnsafeContinuation<Void, Never>, slot: UInt64, tick: UInt64) {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else {
            sleeper.resume()  // not on a loop after all (sleep checked): do not sleep rather than hang
            return
        }
        let pacer: TickPacer
        if let current = perThread.currentValue, current.tick == tick, current.loop === loop {
            pacer = current
        } else {
            pacer = TickPacer(loop: loop, tick: tick)
            perThread.currentValue = pacer
        }
        pacer.add(sleeper, slot: slot)
    }

    private func add(_ sleeper: UnsafeContinuation<Void, Never>, slot: UInt64) {
        let first = sleepers[slot] == nil
        sleepers[slot, default: []].append(sleeper)
        guard first else { return }
        loop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(slot * tick)) { [self] in
            for sleeper in sleepers.removeValue(forKey: slot) ?? [] { sleeper.resume() }
        }
    }
}
