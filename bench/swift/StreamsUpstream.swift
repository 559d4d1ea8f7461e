import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL

/// A slow OpenAI-compatible upstream for bench/streams.sh: every streamed chat completion gets
/// a role chunk at once, then `deltas` content chunks, one every `interval` seconds after the
/// stream began (rounded up to the next `tick-ms`, waited for on the reply's event loop), each
/// `<t=NANOS>` (the wall clock just before it is written: the driver
/// subtracts it from the time it reads the delta), then a finish chunk, a usage chunk and
/// `data: [DONE]`. `GET /health`; `GET /stats` (streams open now, most at once, completed, failed
/// by error, and over TLS the connections by negotiated protocol). Plain HTTP/1.1 by default; with
/// `--tls-cert`/`--tls-key`, HTTPS offering h2 and http/1.1 (`UpstreamConnections`), so that the
/// server multiplexes its calls over a few connections, as with a hosted upstream. Plain NIO
/// handlers (`PacedReplyHandler`), no task per reply: it shares the server's two cores.
struct StreamsUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "streams-upstream",
                                                    abstract: "A slow streaming chat-completions upstream.")

    @Option(help: "The loopback port to listen on.") var port: Int
    @Option(help: "Content chunks per reply.") var deltas = 60
    @Option(help: "Seconds between chunks.") var interval = 1.0
    @Option(help: "A PEM certificate chain: serve HTTPS (h2 or http/1.1 by ALPN) instead of HTTP/1.1.") var tlsCert: String?
    @Option(help: "The PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "HTTP/2: the concurrent streams a connection may carry.") var maxStreams = 100_000
    @Option(help: "Each delta waits for the next whole tick (ms; 0: exact), so that a loop sends the deltas due in one tick in one wake-up (LoopTicker).")
    var tickMs = 1
    @Flag(inversion: .prefixedNo, help: "HTTP/2: send the frames written in one event-loop tick together (FlushCoalescer), as production servers do; --no-coalesce-flushes: each delta in its own TLS record and write.")
    var coalesceFlushes = true

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
        guard deltas >= 0 else { throw ValidationError("--deltas: 0 or more") }
    }

    func run() async throws {
        let stats = NIOLockedValueBox(Stats(connections: tlsCert == nil ? nil : [:]))
        let reply = PacedReplyHandler.Settings(deltas: deltas, interval: .nanoseconds(Int64(interval * 1e9)),
                                               tick: UInt64(tickMs) * 1_000_000, stats: stats)
        var tls: NIOSSLContext?
        if let tlsCert, let tlsKey {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tlsCert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem)))
            configuration.applicationProtocols = NIOHTTP2SupportedALPNProtocols  // h2, then http/1.1
            tls = try NIOSSLContext(configuration: configuration)
        }
        let connections = UpstreamConnections(tls: tls, maxConcurrentStreams: maxStreams, windowSize: 1 << 20,
                                              coalesceFlushes: coalesceFlushes, reply: reply)
        let openFiles = raiseOpenFiles()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { connections.initialize($0) }
            .bind(host: "127.0.0.1", port: port).get()
        let scheme = tlsCert == nil ? "HTTP/1.1" : "HTTPS (h2 up to \(maxStreams) streams a connection, or http/1.1)"
        printFlushed("streams upstream on 127.0.0.1:\(port), \(scheme): \(deltas) deltas every \(self.interval) s, open files \(openFiles)")
        try await server.closeFuture.get()
    }
}
