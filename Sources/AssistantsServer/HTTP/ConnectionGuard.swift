import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// How many connections the server holds and how long it waits for them.
public struct ConnectionLimits: Sendable {
    /// A connection with no request in progress is closed after this long (`ASSISTANTS_IDLE_TIMEOUT_SECONDS`).
    /// A head that trickles in counts as idle: no request has begun until the head is complete.
    public var idleTimeoutSeconds = 60
    /// The most open connections (`ASSISTANTS_MAX_CONNECTIONS`); past it, every request but
    /// `GET /health` and `GET /ready` is answered 503 and its connection closed. nil: from the
    /// descriptor limit (`defaultMaxConnections`).
    public var maxConnections: Int?
    /// After this long (`ASSISTANTS_SLOW_REQUEST_SECONDS`) a request whose body is still arriving
    /// must have averaged `minimumBodyRate`, else its connection is closed.
    public var slowRequestSeconds = 10
    public var minimumBodyRate = 1024
    /// Connections the kernel may hold accepted but not yet taken by the server
    /// (`ASSISTANTS_LISTEN_BACKLOG`; the kernel caps it at `net.core.somaxconn`). Past it, new
    /// connections' SYNs are dropped and their clients retry after 1, 3, 7, 15 s: at 256 (NIO's
    /// default), clients opening a few hundred streams a second waited up to 36 s for an answer.
    public var listenBacklog = 4096

    public init() {}

    /// Half the open-files limit beyond a reserve for the database, upstreams and files:
    /// a streamed run holds a client connection and an upstream one.
    public static func defaultMaxConnections(openFilesLimit: Int) -> Int {
        min(65_536, max(64, (openFilesLimit - 256) / 2))
    }
}

/// The live connection count shared by every connection's `ConnectionGuard`.
final class ConnectionCounter: Sendable {
    private let count = NIOLockedValueBox(0)

    /// Counts a new connection; returns the count with it.
    func open() -> Int { count.withLockedValue { $0 += 1; return $0 } }
    func close() { count.withLockedValue { $0 -= 1 } }
    var current: Int { count.withLockedValue { $0 } }
}

/// Guards each HTTP/1 connection, between the HTTP codec and Hummingbird:
/// - a connection over the cap gets a quick 503 with an OpenAI error body for anything but the
///   health and readiness checks, and is closed;
/// - a request body that arrives slower than `minimumBodyRate` once `slowRequestSeconds` have
///   passed has its connection closed;
/// - the 400 that Hummingbird writes for an unparsable request (empty) gets an OpenAI error body.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let openPaths: Set<String> = ["/health", "/ready"]

    private let limits: ConnectionLimits
    private let maxConnections: Int
    private let counter: ConnectionCounter
    private let logger: Logger
    private var counted = false
    private var overCap = false
    /// Set once this handler answered the connection itself; the rest of its input is dropped.
    private var rejected = false
    private var parseError: String?
    private var rewritingParseError = false
    private var bodyStart: NIODeadline?
    private var bodyBytes = 0
    private var check: Scheduled<Void>?

    init(limits: ConnectionLimits, maxConnections: Int, counter: ConnectionCounter, logger: Logger) {
        self.limits = limits
        self.maxConnections = maxConnections
        self.counter = counter
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        let count = counter.open()
        if count > maxConnections {
            overCap = true
            logger.warning("connection over the cap", metadata: ["connections": "\(count)", "max_connections": "\(maxConnections)"])
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    private func release() {
        check?.cancel()
        check = nil
        if counted {
            counted = false
            counter.close()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !rejected else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if overCap {
                let path = head.path.map { String($0.prefix(while: { $0 != "?" })) } ?? ""
                if !(head.method == .get && Self.openPaths.contains(path)) {
                    reject(context: context, APIError(status: .serviceUnavailable, message:
                        "The server has too many open connections (\(maxConnections)); retry shortly.", type: "server_error", code: "server_overloaded"))
                    return
                }
            }
            // Only a request that sends a body is timed: a GET costs nothing here, and a
            // keep-alive connection has at most one timer, which ends once no body is arriving.
            let sendsBody = head.headerFields[.contentLength].map { $0 != "0" } ?? (head.headerFields[.transferEncoding] != nil)
            if sendsBody {
                bodyStart = .now()
                bodyBytes = 0
                if check == nil { scheduleCheck(context: context, in: .seconds(Int64(max(1, limits.slowRequestSeconds)))) }
            }
        case .body(let bytes):
            bodyBytes += bytes.readableBytes
        case .end:
            bodyStart = nil
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError {
            parseError = "\(error)"
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Unwrapping a part is a dynamic cast: only an unparsable request's answer needs it, and
        // every streamed delta comes through here.
        guard parseError != nil, !rewritingParseError else { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .head(let response) where response.status == .badRequest:
            // Hummingbird's own answer to an unparsable request: same status, with a body.
            rewritingParseError = true
            let body = Self.errorBody(.invalidRequest("The HTTP request could not be parsed (\(parseError ?? ""))."))
            var head = response
            head.headerFields[.contentType] = "application/json"
            head.headerFields[.contentLength] = String(body.readableBytes)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    private func scheduleCheck(context: ChannelHandlerContext, in delay: TimeAmount) {
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.checkBodyRate(context: context)
        }
    }

    /// Closes the connection when its request body has averaged less than the minimum rate.
    private func checkBodyRate(context: ChannelHandlerContext) {
        check = nil
        guard let start = bodyStart else { return }
        let grace = TimeAmount.seconds(Int64(max(1, limits.slowRequestSeconds)))
        let waited = NIODeadline.now() - start
        // A later request on the connection may have begun since the timer was set.
        if waited < grace { return scheduleCheck(context: context, in: grace - waited) }
        let elapsed = Double(waited.nanoseconds) / 1e9
        if Double(bodyBytes) < elapsed * Double(limits.minimumBodyRate) {
            logger.info("closing a connection whose request body arrives too slowly",
                        metadata: ["bytes": "\(bodyBytes)", "seconds": "\(Int(elapsed))"])
            rejected = true
            context.close(promise: nil)
            return
        }
        scheduleCheck(context: context, in: .seconds(1))
    }

    /// Answers the connection from here, and closes it.
    private func reject(context: ChannelHandlerContext, _ error: APIError) {
        rejected = true
        let body = Self.errorBody(error)
        let head = HTTPResponse(status: error.status, headerFields: [
            .contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    static func errorBody(_ error: APIError) -> ByteBuffer {
        (try? error.encoded()) ?? ByteBuffer(string: #"{"error":{"message":"error","type":"server_error","param":null,"code":null}}"#)
    }
}

/// The descriptor limit of this process.
public enum OpenFilesLimit {
    /// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft and hard limits found, and the soft limit now.
    public static func raise() -> (soft: Int, hard: Int, now: Int) {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return (-1, -1, -1) }
        let soft = Int(clamping: limit.rlim_cur), hard = Int(clamping: limit.rlim_max)
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { return (soft, hard, hard) }
        }
        return (soft, hard, soft)
    }

    #if os(Linux)
    static let resource = Int32(RLIMIT_NOFILE.rawValue)
    #else
    static let resource = RLIMIT_NOFILE
    #endif
}

/// The soft open-files limit in force.
func currentOpenFilesLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(OpenFilesLimit.resource, &limit) == 0 else { return 1024 }
    return Int(clamping: limit.rlim_cur)
}
