import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// How the bench upstream serves a connection: HTTP/1.1, or with TLS h2 or http/1.1 by ALPN,
/// each request (or h2 stream) by a `PacedReplyHandler`. On h2, settings of our own and, unless
/// `coalesceFlushes` is off, a `FlushCoalescer` under HTTP/2. NIO's default h2 settings allow 100
/// concurrent streams, and AsyncHTTPClient opens at most one HTTP/2 connection per event loop
/// and host and queues requests past its streams, failing them after its connect timeout: that
/// would hold the whole bench to a hundred or two streams.
struct UpstreamConnections: Sendable {
    let tls: NIOSSLContext?
    let coalesceFlushes: Bool
    let reply: PacedReplyHandler.Settings
    private let connection: NIOHTTP2Handler.ConnectionConfiguration
    private let stream: NIOHTTP2Handler.StreamConfiguration

    init(tls: NIOSSLContext?, maxConcurrentStreams: Int, windowSize: Int, coalesceFlushes: Bool, reply: PacedReplyHandler.Settings) {
        self.tls = tls
        self.coalesceFlushes = coalesceFlushes
        self.reply = reply
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = nioDefaultSettings.filter { $0.parameter != .maxConcurrentStreams } + [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .initialWindowSize, value: windowSize),
        ]
        self.connection = connection
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = windowSize
        self.stream = stream
    }

    /// Sets up an accepted connection's pipeline.
    func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        guard let tls else { return http1(channel) }
        do {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return channel.configureHTTP2SecureUpgrade(h2ChannelConfigurator: { h2($0) }, http1ChannelConfigurator: { channel in
            reply.stats.withLockedValue { $0.connections?["http/1.1", default: 0] += 1 }
            return http1(channel)
        })
    }

    private func http1(_ channel: any Channel) -> EventLoopFuture<Void> {
        let reply = self.reply
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(PacedReplyHandler(settings: reply))
        }
    }

    private func h2(_ channel: any Channel) -> EventLoopFuture<Void> {
        reply.stats.withLockedValue { $0.connections?["h2", default: 0] += 1 }
        let reply = self.reply
        return channel.eventLoop.makeCompletedFuture {
            if coalesceFlushes { try channel.pipeline.syncOperations.addHandler(FlushCoalescer()) }
            _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .server, connectionConfiguration: connection, streamConfiguration: stream
            ) { streamChannel in
                streamChannel.eventLoop.makeCompletedFuture {
                    try streamChannel.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                    try streamChannel.pipeline.syncOperations.addHandler(PacedReplyHandler(settings: reply))
                }
            }
            try channel.pipeline.syncOperations.addHandler(CloseOnError())
        }
    }
}

/// Closes an HTTP/2 connection on a connection error. NIOHTTP2Handler sends GOAWAY and passes the
/// error on (e.g. a client past the rapid-reset limit, 200 RST_STREAM in 30 s): with nothing
/// after it to close the connection, it stayed open, serving no stream, and the client's calls
/// on it hung.
private final class CloseOnError: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Sends what an HTTP/2 connection's streams write in one event-loop tick as one buffer, one TLS
/// record and one write to the socket, as production HTTP/2 servers do (Go's buffers frames and
/// flushes when its write queue runs dry; nginx fills a 16 KB TLS buffer). Without it, each
/// delta a stream flushed went out alone, in its own TLS record and `write(2)`: at 10,000
/// streams the upstream took 27.5 s of CPU a run instead of 22 s, on the two cores the server
/// under test has. A flush is put off to the loop's next tick, when the replies woken in this
/// one have all written; a close sends what is pending first. Sits between TLS and HTTP/2; one
/// per connection, on its loop only.
final class FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Writes since the last flush that went out: the bytes, and their promises.
    private var pending: ByteBuffer?
    private var promises: [EventLoopPromise<Void>] = []
    /// Whether a flush was asked for and is waiting for the next tick.
    private var flushScheduled = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(var bytes) = unwrapOutboundIn(data) else {
            send(context: context)
            context.write(data, promise: promise)
            return
        }
        if pending == nil {
            pending = bytes
        } else {
            pending?.writeBuffer(&bytes)
        }
        if let promise { promises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.flushScheduled = false
            handler.send(context: context)
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        send(context: context)
        context.flush()
        context.close(mode: mode, promise: promise)
    }

    /// Passes the pending bytes on as one write (not flushed).
    private func send(context: ChannelHandlerContext) {
        guard let bytes = pending else { return }
        pending = nil
        let promise: EventLoopPromise<Void>? = promises.isEmpty ? nil : context.eventLoop.makePromise()
        if let promise {
            let waiting = promises
            promise.futureResult.whenComplete { result in
                for waiter in waiting { waiter.completeWith(result) }
            }
        }
        promises.removeAll(keepingCapacity: true)
        context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
    }
}
