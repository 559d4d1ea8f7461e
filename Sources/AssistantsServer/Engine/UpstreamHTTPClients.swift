import AsyncHTTPClient
import NIOCore
import NIOPosix

/// The HTTP clients model calls go through: one per event loop, each keeping its connections on
/// its own loop. A call uses the client of the loop it runs on, so a run pinned to its client's
/// loop (`EventLoopTaskExecutor`) reads its upstream on the thread that writes its stream. One
/// client for the whole group multiplexed every HTTP/2 call over one connection, on one loop:
/// at 10,000 streams that loop did 60 of the 76 s of event-loop CPU, the other 16.
struct UpstreamHTTPClients: Sendable {
    /// The client for calls from outside the event loops (and the one tests pass).
    let shared: HTTPClient
    private let byLoop: PerEventLoop<HTTPClient>

    /// One client for every call.
    init(_ client: HTTPClient) {
        self.shared = client
        self.byLoop = PerEventLoop()
    }

    /// A client per loop of `group`, each made with `configuration`; `shared` serves the rest.
    init(group: MultiThreadedEventLoopGroup, shared: HTTPClient, configuration: HTTPClient.Configuration) {
        self.shared = shared
        self.byLoop = PerEventLoop(group) { HTTPClient(eventLoopGroupProvider: .shared($0), configuration: configuration) }
    }

    /// The client of the event loop running the current thread, else the shared one.
    var current: HTTPClient {
        byLoop.current ?? shared
    }

    /// Shuts every per-loop client down (the shared one is its owner's to shut down).
    func shutdownLoopClients() async {
        for client in byLoop.values { try? await client.shutdown() }
    }
}
