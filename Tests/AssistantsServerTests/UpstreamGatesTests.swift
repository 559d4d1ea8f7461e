import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing
@testable import AssistantsServer

/// Per-route upstream connection caps: the gate itself, the models file's `max_connections`, and
/// calls past a cap waiting their turn instead of failing in the HTTP client's pool.
@Suite struct UpstreamGatesTests {
    @Test func gateAdmitsUpToItsLimitThenInOrder() async throws {
        let gate = PermitGate(limit: 2)
        try await gate.acquire()
        try await gate.acquire()
        #expect(gate.inUse == 2)
        let order = NIOLockedValueBox([Int]())
        // Queued in a known order: each one waits before the next starts.
        var waiters: [Task<Void, any Error>] = []
        for index in 1...3 {
            waiters.append(Task {
                try await gate.acquire()
                order.withLockedValue { $0.append(index) }
            })
            while gate.waiting < index { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(order.withLockedValue { $0 }.isEmpty)
        gate.release()
        try await waiters[0].value
        gate.release()
        try await waiters[1].value
        #expect(order.withLockedValue { $0 } == [1, 2])
        #expect(gate.waiting == 1)
        gate.release()
        try await waiters[2].value
        #expect(order.withLockedValue { $0 } == [1, 2, 3])
        #expect(gate.inUse == 2)
    }

    @Test func cancelledWaiterLeavesTheQueueAndTakesNoPermit() async throws {
        let gate = PermitGate(limit: 1)
        try await gate.acquire()
        let waiter = Task { try await gate.acquire() }
        while gate.waiting < 1 { try await Task.sleep(for: .milliseconds(5)) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(gate.waiting == 0)
        gate.release()
        #expect(gate.inUse == 0)
        // The permit is free again: taken at once.
        try await gate.acquire()
        #expect(gate.inUse == 1)
    }

    @Test func modelsFileSetsARoutesCap() throws {
        let directory = TestSupport.temporaryDirectory()
        let path = directory + "/models.yaml"
        try """
        models:
          - name: big
            upstream_url: http://127.0.0.1:9/v1
            max_connections: 10000
          - prefix: small
            upstream_url: http://127.0.0.1:9/v1
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let router = try ModelRouter.load(path: path, defaultURL: "http://127.0.0.1:8/v1", defaultAPIKey: nil)
        #expect(router.endpoint(for: "big")?.connectionCap == ConnectionCap(route: "name:big", max: 10000))
        #expect(router.endpoint(for: "small-1")?.connectionCap == nil)
        #expect(router.endpoint(for: "other")?.connectionCap == nil)
        #expect(router.httpClientConnectionLimit(defaultLimit: 256) == 10256)

        let gates = UpstreamGates(defaultLimit: 7)
        let big = try #require(router.endpoint(for: "big"))
        let small = try #require(router.endpoint(for: "small-1"))
        #expect(gates.gate(for: big).limit == 10000)
        #expect(gates.gate(for: small).limit == 7)
        // Routes without a cap of their own share their host's gate.
        #expect(gates.gate(for: small) === gates.gate(for: try #require(router.endpoint(for: "small-2"))))

        try """
        models:
          - name: big
            max_connections: 0
        """.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) {
            try ModelRouter.load(path: path, defaultURL: nil, defaultAPIKey: nil)
        }
    }

    /// Two calls at once on a route capped at one connection, whose replies take longer than the
    /// HTTP client's connect timeout: the second waits for the first and both complete. (Waiting
    /// in the HTTP client's pool instead, the second failed with getConnectionFromPoolTimeout.)
    @Test func callsPastTheCapWaitTheirTurn() async throws {
        let open = NIOLockedValueBox((now: 0, most: 0))
        let router = Router()
        router.post("v1/chat/completions") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                open.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
                try await Task.sleep(for: .milliseconds(1500))
                try await writer.write(ByteBuffer(string: #"data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}"# + "\n\n"))
                open.withLockedValue { $0.now -= 1 }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
        }
        let upstream = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await upstream.test(.live) { client in
            let port = try #require(client.port)
            let models = ModelRouter(routes: [
                .init(name: "capped", upstream_url: "http://127.0.0.1:\(port)/v1", max_connections: 1),
            ], defaultURL: nil, defaultAPIKey: nil)
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1
            configuration.timeout.connect = .milliseconds(500)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let chat = ChatCompletionsClient(http: http, retry: .init(attempts: 1), logger: TestSupport.logger, gates: UpstreamGates())
            let endpoint = try #require(models.endpoint(for: "capped"))
            let started = ContinuousClock.now
            async let first = chat.complete(ChatRequest(messages: []), endpoint: endpoint) { _ in }
            async let second = chat.complete(ChatRequest(messages: []), endpoint: endpoint) { _ in }
            let turns = try await [first, second]
            #expect(turns.map(\.text) == ["hi", "hi"])
            #expect(open.withLockedValue { $0.most } == 1)
            #expect(ContinuousClock.now - started >= .milliseconds(2900))
            try await http.shutdown()
        }
    }
}

/// The bound on all plain-HTTP upstream connections together, from the descriptors left.
@Suite struct UpstreamDescriptorBudgetTests {
    @Test func budgetIsWhatTheClientConnectionsLeave() {
        #expect(UpstreamGates.descriptorBudget(openFilesLimit: 20_000, maxConnections: 10_000) == 9_744)
        #expect(UpstreamGates.descriptorBudget(openFilesLimit: 1_024, maxConnections: 10_000) == 16)
    }

    /// Two routes, each with room for both calls, under a total of one: they go one at a time.
    @Test func totalBoundsEveryRouteTogether() async throws {
        let gates = UpstreamGates(defaultLimit: 5, total: 1)
        let a = UpstreamEndpoint(baseURL: "http://127.0.0.1:1/v1", apiKey: nil, upstreamModel: "a", contextWindow: 1000)
        var b = a
        b.connectionCap = ConnectionCap(route: "name:b", max: 5)
        let open = NIOLockedValueBox((now: 0, most: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for endpoint in [a, b, a, b] {
                group.addTask {
                    try await gates.withPermit(for: endpoint) {
                        open.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
                        try await Task.sleep(for: .milliseconds(20))
                        open.withLockedValue { $0.now -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(open.withLockedValue { $0.most } == 1)
        #expect(gates.total?.inUse == 0)
        #expect(gates.gate(for: a).inUse == 0 && gates.gate(for: b).inUse == 0)
    }

    /// An `https://` upstream multiplexes its calls over HTTP/2: with the total taken by an
    /// `http://` call, calls to it still go at once (held by their host's gate only), while a
    /// second `http://` call waits for the total.
    @Test func totalHoldsPlainHTTPCallsOnly() async throws {
        let gates = UpstreamGates(defaultLimit: 5, total: 1)
        let plain = UpstreamEndpoint(baseURL: "http://127.0.0.1:1/v1", apiKey: nil, upstreamModel: "a", contextWindow: 1000)
        let tls = UpstreamEndpoint(baseURL: "https://127.0.0.1:2/v1", apiKey: nil, upstreamModel: "a", contextWindow: 1000)
        #expect(UpstreamGates.callHoldsAConnection(plain) && !UpstreamGates.callHoldsAConnection(tls))
        try await gates.withPermit(for: plain) {
            #expect(gates.total?.inUse == 1)
            // Two https calls at once, each bounded by a deadline instead of hanging if held.
            let calls = (0..<2).map { _ in
                Task { try await gates.withPermit(for: tls) { try await Task.sleep(for: .milliseconds(200)) } }
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while gates.gate(for: tls).inUse < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(gates.gate(for: tls).inUse == 2)
            #expect(gates.total?.inUse == 1 && gates.total?.waiting == 0)
            calls.forEach { $0.cancel() }
            for call in calls { _ = await call.result }

            let second = Task { try await gates.withPermit(for: plain) {} }
            while gates.total?.waiting ?? 0 < 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(gates.total?.waiting == 1)
            second.cancel()
            _ = await second.result
        }
        #expect(gates.total?.inUse == 0 && gates.gate(for: tls).inUse == 0)
    }
}
