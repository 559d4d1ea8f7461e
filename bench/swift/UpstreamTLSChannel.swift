import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2
import NIOSSL

/// The bench upstream's HTTPS connections: TLS offering h2 and http/1.1 by ALPN, and on h2
/// settings of our own. Hummingbird's HTTP2UpgradeChannel advertises NIO's default of 100
/// concurrent streams, and AsyncHTTPClient opens at most one HTTP/2 connection per event loop and
/// host (one, as measured here) and queues requests past its streams, failing them after its
/// connect timeout: that would hold the whole bench to a hundred or two streams.
struct UpstreamTLSChannel: HTTPChannelHandler {
    /// A connection once ALPN has chosen: HTTP/1.1, or HTTP/2's multiplexer of request streams.
    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<NIONegotiatedHTTPVersion<HTTP1Channel.Value, NIOHTTP2Handler.AsyncStreamMultiplexer<HTTP1Channel.Value>>>
        let channel: any Channel
    }

    let responder: Responder
    private let sslContext: NIOSSLContext
    private let http1: HTTP1Channel
    private let http2: NIOHTTP2Handler.Configuration
    /// Called with `h2` or `http/1.1` as each connection is negotiated.
    private let negotiated: @Sendable (String) -> Void

    init(tls: TLSConfiguration, maxConcurrentStreams: Int, windowSize: Int,
         negotiated: @escaping @Sendable (String) -> Void, responder: @escaping Responder) throws {
        var tls = tls
        tls.applicationProtocols = NIOHTTP2SupportedALPNProtocols  // h2, then http/1.1
        self.sslContext = try NIOSSLContext(configuration: tls)
        self.responder = responder
        self.http1 = HTTP1Channel(responder: responder)
        var http2 = NIOHTTP2Handler.Configuration()
        http2.connection.initialSettings = nioDefaultSettings.filter { $0.parameter != .maxConcurrentStreams } + [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .initialWindowSize, value: windowSize),
        ]
        http2.stream.targetWindowSize = windowSize
        self.http2 = http2
        self.negotiated = negotiated
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let http1 = self.http1, http2 = self.http2
        return channel.configureHTTP2AsyncSecureUpgrade { connection in
            http1.setup(channel: connection, logger: logger)
        } http2ConnectionInitializer: { connection in
            connection.configureAsyncHTTP2Pipeline(mode: .server, configuration: http2) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTPServerCodec())
                    return try HTTP1Channel.Value(wrappingChannelSynchronously: stream)
                }
            }.flatMapThrowing { multiplexer in
                try connection.pipeline.syncOperations.addHandler(CloseOnError())
                return multiplexer
            }
        }.map { Value(negotiated: $0, channel: channel) }
    }

    /// Serves the connection: its requests in turn on HTTP/1.1, each stream at once on h2.
    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http1_1(let connection):
                negotiated("http/1.1")
                await handleHTTP(asyncChannel: connection, logger: logger)
            case .http2(let streams):
                negotiated("h2")
                try await withThrowingDiscardingTaskGroup { group in
                    for try await stream in streams.inbound {
                        group.addTask { await self.handleHTTP(asyncChannel: stream, logger: logger) }
                    }
                }
            }
        } catch {
            logger.debug("an upstream TLS connection ended: \(error)")
        }
    }
}

/// Closes an HTTP/2 connection on a connection error. NIOHTTP2Handler sends GOAWAY and passes the
/// error on (e.g. a client past the rapid-reset limit, 200 RST_STREAM in 30 s): with nothing
/// after it to close the connection, it stayed open, serving no stream, and the client's calls
/// on it hung (Hummingbird's HTTP2Channel has its connection manager do this).
private final class CloseOnError: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
