import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdCore
import NIOConcurrencyHelpers
import NIOSSL

/// A slow OpenAI-compatible upstream for bench/streams.sh: every streamed chat completion gets
/// a role chunk at once, then `deltas` content chunks, one every `interval` seconds after the
/// stream began, each `<t=NANOS>` (the wall clock just before it is written: the driver
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
    }

    func run() async throws {
        let stats = NIOLockedValueBox(Stats(connections: tlsCert == nil ? nil : [:]))
        let deltas = self.deltas
        let interval = Duration.nanoseconds(Int64(self.interval * 1e9))
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
            let created = Int(Date().timeIntervalSince1970)
            @Sendable func chunk(_ choices: String, usage: String? = nil) -> ByteBuffer {
                var json = #"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":\#(created),"model":"\#(model)","choices":\#(choices)"#
                if let usage { json += #","usage":\#(usage)"# }
                return ByteBuffer(string: "data: \(json)}\n\n")
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                stats.withLockedValue { $0.open += 1; $0.most_open = max($0.most_open, $0.open) }
                defer { stats.withLockedValue { $0.open -= 1 } }
                do {
                    try await writer.write(chunk(#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#))
                    let start = ContinuousClock.now
                    for k in 1...max(deltas, 1) where k <= deltas {
                        try await Task.sleep(until: start + interval * k, clock: .continuous)
                        try await writer.write(chunk(#"[{"index":0,"delta":{"content":"<t=\#(wallNanos())>"},"finish_reason":null}]"#))
                    }
                    try await writer.write(chunk(#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#))
                    try await writer.write(chunk("[]", usage: #"{"prompt_tokens":10,"completion_tokens":\#(deltas),"total_tokens":\#(10 + deltas)}"#))
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
