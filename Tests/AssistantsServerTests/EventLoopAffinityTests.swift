import AsyncHTTPClient
import Dispatch
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing
@testable import AssistantsServer

/// A request, the run it starts and the run's upstream call stay on the request's connection's
/// event loop: the executor that pins a task there, the connection that pins each request and
/// its streamed answer, and the per-loop HTTP clients model calls choose from.
@Suite struct EventLoopAffinityTests {
    /// Resumes the caller from a thread that is none of NIO's (as the SQLite writer does).
    static func resumeFromAnotherThread() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { continuation.resume() }
        }
    }

    @Test func aTaskPinnedToALoopComesBackToItAfterEveryResume() async throws {
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            let executor = try #require(EventLoopTaskExecutor.of(loop))
            let onLoop = await Task(executorPreference: executor) { () -> [Bool] in
                var seen: [Bool] = []
                for _ in 0..<3 {
                    seen.append(MultiThreadedEventLoopGroup.currentEventLoop === loop)
                    await Self.resumeFromAnotherThread()
                }
                seen.append(MultiThreadedEventLoopGroup.currentEventLoop === loop)
                // A task it schedules from there is pinned to the same loop (RunEngine.schedule does this).
                let child = Task(executorPreference: EventLoopTaskExecutor.current) { () -> Bool in
                    await Self.resumeFromAnotherThread()
                    return MultiThreadedEventLoopGroup.currentEventLoop === loop
                }
                seen.append(await child.value)
                return seen
            }.value
            #expect(onLoop == [true, true, true, true, true])
        }
        // A loop of another group has no executor: work for it runs wherever it would have.
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        #expect(EventLoopTaskExecutor.of(other.next()) == nil)
        try await other.shutdownGracefully()
    }

    /// A request context that knows its connection's event loop.
    struct LoopContext: RequestContext {
        var coreContext: CoreRequestContextStorage
        let loop: any EventLoop

        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            loop = source.channel.eventLoop
        }
    }

    /// The answer of `/where`: a line per step of the request and of its streamed body, each
    /// taken after a resumption from a thread that is none of NIO's.
    static func whereRouter() -> Router<LoopContext> {
        let router = Router(context: LoopContext.self)
        router.get("where") { _, context -> Response in
            var lines = ""
            for _ in 0..<3 {
                await Self.resumeFromAnotherThread()
                lines += MultiThreadedEventLoopGroup.currentEventLoop === context.loop ? "own loop\n" : "elsewhere\n"
            }
            let answered = lines
            // Hummingbird writes the body after the responder has returned: it is pinned as well.
            return Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: answered))
                for _ in 0..<5 {
                    await Self.resumeFromAnotherThread()
                    let line = MultiThreadedEventLoopGroup.currentEventLoop === context.loop ? "own loop\n" : "elsewhere\n"
                    try await writer.write(ByteBuffer(string: line))
                }
                try await writer.finish(nil)
            })
        }
        return router
    }

    @Test func aConnectionsRequestsAndStreamedAnswersRunOnItsLoopWhereverTheyResume() async throws {
        let app = Application(router: Self.whereRouter(), server: LoopPinnedHTTP1Channel.server(configuration: .init()),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            for _ in 0..<4 {
                try await client.execute(uri: "/where", method: .get) { response in
                    #expect(String(buffer: response.body) == String(repeating: "own loop\n", count: 8))
                }
            }
        }
    }

    @Test func aModelCallUsesTheClientOfItsLoop() async throws {
        let shared = HTTPClient(eventLoopGroupProvider: .singleton)
        let clients = UpstreamHTTPClients(group: .singleton, shared: shared, configuration: .init())
        var chosen: [ObjectIdentifier] = []
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            let executor = try #require(EventLoopTaskExecutor.of(loop))
            let client = await Task(executorPreference: executor) { clients.current }.value
            #expect(client !== shared)
            #expect(client.eventLoopGroup.next() === loop)
            chosen.append(ObjectIdentifier(client))
        }
        #expect(Set(chosen).count == chosen.count)
        // Off the event loops: the shared client.
        let offLoop = await withCheckedContinuation { (continuation: CheckedContinuation<HTTPClient, Never>) in
            DispatchQueue.global().async { continuation.resume(returning: clients.current) }
        }
        #expect(offLoop === shared)
        await clients.shutdownLoopClients()
        try await shared.shutdown()
    }
}
