import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1.1 connection, with the connection's task pinned to its channel's event
/// loop (`EventLoopTaskExecutor`) for its whole life: reading its requests, answering them, and
/// writing a streamed answer's events. Whatever thread a request's database calls resume on, its
/// code comes back there, and a run it starts is pinned there too (`RunEngine.schedule`), so a
/// streamed run's upstream call, its events and the client's connection share one thread.
///
/// Pinning the connection, not only the responder, matters to every streamed delta: Hummingbird
/// writes a response body after the responder has returned, and a task without a preference runs
/// as NIO's global work, whose jobs NIO runs as the loop's serial executor. Nonisolated code asks
/// for the generic executor, so each resumption of the stream's writer hopped once more, a second
/// job per delta.
struct LoopPinnedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel

    /// Hummingbird's `.http1(configuration:)`, with each connection pinned to its loop.
    static func server(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            LoopPinnedHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration))
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        // A loop of another group (none here) has no executor: the connection runs as before.
        await withTaskExecutorPreference(EventLoopTaskExecutor.of(value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}
