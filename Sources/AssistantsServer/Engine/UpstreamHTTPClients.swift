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
    private let byLoop: [ObjectIdentifier: HTTPClient]

    /// One client for every call.
    init(_ client: HTTPClient) {
        self.shared = client
        self.byLoop = [:]
    }

    /// A client per loop of `group`, each made with `configuration`; `shared` serves the rest.
    init(group: MultiThreadedEventLoopGroup, shared: HTTPClient, configuration: HTTPClient.Configuration) {
        self.shared = shared
        var table: [ObjectIdentifier: HTTPClient] = [:]
        for loop in group.makeIterator() {
            table[ObjectIdentifier(loop)] = HTTPClient(eventLoopGroupProvider: .shared(loop), configuration: configuration)
        }
        self.byLoop = table
    }

    /// The client of the event loop running the current thread, else the shared one.
    var current: HTTPClient {
        MultiThreadedEventLoopGroup.currentEventLoop.flatMap { byLoop[ObjectIdentifier($0)] } ?? shared
    }

    /// Shuts every per-loop client down (the shared one is its owner's to shut down).
    func shutdownLoopClients() async {
        for client in byLoop.values { try? await client.shutdown() }
    }
}
