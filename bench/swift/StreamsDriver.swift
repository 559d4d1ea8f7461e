import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Holds thousands of streamed runs open at once (bench/streams.sh). Opens `streams` runs,
/// `rate` a second, each `POST /v1/threads/runs {stream: true}` on a connection of its own (plain
/// NIO: `StreamHandler`, which scans the event stream in place with `EventScanner`), and reads
/// every event to the end. For each `thread.message.delta` it records the wall clock at receipt
/// minus the upstream's `<t=NANOS>` stamp: the latency the server adds (plus loopback and this
/// reader, both small). Meanwhile `GET /health` every `health-interval` on a connection of its own
/// (AsyncHTTPClient) while any stream is open, and once a second the server's RSS, CPU and
/// descriptors from /proc. A stream is completed when it saw every stamp, `thread.run.completed`
/// and `event: done`; anything else is dropped, with its reason. Prints one `RESULT {json}`
/// line, as bench/streams_driver.py does.
struct StreamsDriverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "streams-driver",
                                                    abstract: "Holds streamed runs open and measures them.")

    @Option(help: "The server, e.g. http://127.0.0.1:8080 (loopback only).") var baseURL: String
    @Option(help: "The server's pid, for /proc.") var serverPid: Int32
    @Option(help: "Clock ticks a second (getconf CLK_TCK).") var clkTck = 100
    @Option var streams = 10_000
    @Option(help: "Content chunks per reply (as the upstream sends).") var deltas = 60
    @Option(help: "Streams opened a second.") var rate = 250.0
    @Option var model = "gpt-4o-mini"
    @Option var healthInterval = 0.1
    @Option(help: "One stream, start to end (s).") var streamTimeout = 600.0
    @Option(help: "Silence on one stream (s).") var readTimeout = 60.0
    @Option(help: "The whole bench (s).") var deadline = 1200.0
    @Option(help: "Event loop threads for the streams' connections (0: NIO's singleton group, a thread a core).")
    var eventLoops = 1

    /// Counters shared by the streams and the samplers.
    struct Shared {
        var open = 0
        var mostOpen = 0
        var completed = 0
        var dropped: [String: Int] = [:]
        var allOpenAt: ContinuousClock.Instant?
        var firstCloseAt: ContinuousClock.Instant?
        /// The same moments by the wall clock the stamps are in.
        var allOpenWall: Int64?
        var firstCloseWall: Int64?
        var latencies: [Int64] = []
        /// Each latency's stamp (when the upstream sent the delta), in the same order.
        var stamps: [Int64] = []
        /// Each stream's first delta's latency, and every later delta's: a stream's first delta
        /// waits for its message to be created, the others do not.
        var firstDeltaLatencies: [Int64] = []
        var laterDeltaLatencies: [Int64] = []
        var firstEventMs: [Double] = []
        var health: [(at: ContinuousClock.Instant, ms: Double)] = []
        var healthErrors: [String: Int] = [:]
        var samples: [ProcSample] = []
    }

    /// The server's /proc figures at one moment.
    struct ProcSample {
        var rssKB = 0
        var hwmKB = 0
        var threads = 0
        var fds = 0
    }

    func validate() throws {
        let host = URL(string: baseURL)?.host ?? ""
        guard ["127.0.0.1", "localhost", "::1"].contains(host) else { throw ValidationError("loopback only: \(baseURL)") }
        guard eventLoops >= 0 else { throw ValidationError("--event-loops: 0 or more") }
    }

    func run() async throws {
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        guard let url = URL(string: base), url.scheme == "http", let host = url.host, !host.isEmpty else {
            throw ValidationError("an http:// base URL with a host: \(baseURL)")
        }
        let authority = String(base.dropFirst("http://".count))
        let address = try SocketAddress.makeAddressResolvingHost(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
                                                                 port: url.port ?? 80)
        let limit = raiseOpenFiles()
        if limit < streams + 64 {
            FileHandle.standardError.write(Data("warning: the driver may open \(limit) files, fewer than \(streams) streams need\n".utf8))
        }
        // Few loop threads: a delta wakes a loop, and the fewer there are, the more deltas each
        // wake-up reads (the driver's own CPU went mostly to waking up, with one loop per core).
        let loops: any EventLoopGroup = eventLoops > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
                                                       : MultiThreadedEventLoopGroup.singleton
        let prober = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: .init(connectionPool: .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)))
        do {
            try await measure(base: base, loops: loops, target: Target(address: address, authority: authority), prober: prober)
        } catch {
            try? await prober.shutdown()
            if eventLoops > 0 { try? await loops.shutdownGracefully() }
            throw error
        }
        try await prober.shutdown()
        if eventLoops > 0 { try await loops.shutdownGracefully() }
    }

    /// Where the streams connect, and the `Host` they name.
    struct Target: Sendable {
        let address: SocketAddress
        let authority: String
    }

    func measure(base: String, loops: any EventLoopGroup, target: Target, prober: HTTPClient) async throws {
        let assistantID = try await createAssistant(base: base, client: prober)
        let shared = NIOLockedValueBox(Shared())
        let ticks0 = procCPUTicks(serverPid)
        let usage0 = driverCPUSeconds()
        let t0 = ContinuousClock.now
        let t0Wall = wallNanos()
        let loopT0 = NIODeadline.now()
        let stop = NIOLockedValueBox(false)
        async let health: Void = sampleHealth(base: base, client: prober, shared: shared, stop: stop)
        async let proc: Void = sampleProc(shared: shared, stop: stop)
        var openedIn = Duration.zero
        let finished = await withTaskGroup(of: Bool.self) { group -> Bool in
            for index in 0..<streams {
                let due = loopT0 + .nanoseconds(Int64(Double(index) / rate * 1e9))
                if due > .now() { try? await sleepOnEventLoop(until: due) }
                // true: a stream's end, whatever it was (it records its own outcome); false is the deadline's.
                group.addTask {
                    await self.oneStream(index: index, group: loops, target: target, assistantID: assistantID, shared: shared)
                    return true
                }
            }
            openedIn = .now - t0
            // The bench's own deadline: streams still open then are dropped (cancelled: see oneStream).
            group.addTask {
                try? await sleepOnEventLoop(until: loopT0 + .nanoseconds(Int64(deadline * 1e9)))
                return false
            }
            var done = 0
            for await isStream in group {
                guard isStream else { group.cancelAll(); return false }
                done += 1
                if done == streams { group.cancelAll(); return true }
            }
            return false
        }
        if !finished {
            shared.withLockedValue { state in
                let missing = streams - state.completed - state.dropped.values.reduce(0, +)
                if missing > 0 { state.dropped["bench deadline", default: 0] += missing }
            }
        }
        let wall = ContinuousClock.now - t0
        let ticks = procCPUTicks(serverPid) - ticks0
        let driverCPU = driverCPUSeconds() - usage0
        stop.withLockedValue { $0 = true }
        _ = await (health, proc)
        let result = shared.withLockedValue { report($0, openedIn: openedIn, wall: wall, serverTicks: ticks, driverCPU: driverCPU, start: (t0, t0Wall)) }
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        printFlushed("RESULT " + String(decoding: data, as: UTF8.self))
        if shared.withLockedValue({ $0.completed }) != streams { throw ExitCode(1) }
    }

    func createAssistant(base: String, client: HTTPClient) async throws -> String {
        var request = HTTPClientRequest(url: base + "/v1/assistants")
        request.method = .POST
        request.headers = Self.headers
        request.body = .bytes(ByteBuffer(string: #"{"model":"\#(model)","name":"streams-bench","instructions":"Be brief."}"#))
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok, let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
              let id = object["id"] as? String else {
            throw ValidationError("could not create the assistant: \(response.status) \(String(buffer: body))")
        }
        return id
    }

    static let headers: HTTPHeaders = [
        "Content-Type": "application/json", "OpenAI-Beta": "assistants=v2", "Authorization": "Bearer bench",
    ]

    /// One streamed run, read to its end on a connection of its own; the shared counters are
    /// touched when it opens and when it ends, never per event.
    func oneStream(index: Int, group: any EventLoopGroup, target: Target, assistantID: String, shared: NIOLockedValueBox<Shared>) async {
        let body = ByteBuffer(string: #"{"assistant_id":"\#(assistantID)","stream":true,"thread":{"messages":[{"role":"user","content":"streams bench \#(index)"}]}}"#)
        var headers = Self.headers
        headers.add(name: "Host", value: target.authority)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/threads/runs", headers: headers)
        let loop = group.next()
        let promise = loop.makePromise(of: StreamHandler.Outcome.self)
        let limits = StreamHandler.Limits(deltas: deltas, streams: streams, readTimeout: .nanoseconds(Int64(readTimeout * 1e9)),
                                          streamTimeout: .nanoseconds(Int64(streamTimeout * 1e9)))
        let started = NIODeadline.now()
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(30))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        StreamHandler(request: head, body: body, started: started, limits: limits, shared: shared, outcome: promise))
                }
            }
        let outcome: StreamHandler.Outcome
        do {
            let channel = try await bootstrap.connect(to: target.address).get()
            outcome = await withTaskCancellationHandler {
                (try? await promise.futureResult.get()) ?? .init(droppedFor: "no outcome")
            } onCancel: {
                channel.pipeline.fireUserInboundEventTriggered(StreamHandler.Abort(reason: "bench deadline"))
            }
        } catch {
            outcome = .init(droppedFor: "\(type(of: error)): \(String(describing: error).prefix(80))")
            promise.succeed(outcome)  // if the handler never saw the connection (a no-op if it did)
        }
        shared.withLockedValue { state in
            if outcome.opened {
                state.open -= 1
                if state.firstCloseAt == nil {
                    state.firstCloseAt = .now
                    state.firstCloseWall = wallNanos()
                }
            }
            if let reason = outcome.droppedFor { state.dropped[reason, default: 0] += 1 } else { state.completed += 1 }
            if let latencies = outcome.latencies {
                state.latencies += latencies
                state.stamps += outcome.stamps
                if let first = latencies.first { state.firstDeltaLatencies.append(first) }
                state.laterDeltaLatencies += latencies.dropFirst()
            }
            if let firstEventMs = outcome.firstEventMs { state.firstEventMs.append(firstEventMs) }
        }
    }

    func sampleHealth(base: String, client: HTTPClient, shared: NIOLockedValueBox<Shared>, stop: NIOLockedValueBox<Bool>) async {
        let interval = TimeAmount.nanoseconds(Int64(healthInterval * 1e9))
        var next = NIODeadline.now()
        while !stop.withLockedValue({ $0 }) {
            next = next + interval
            if shared.withLockedValue({ $0.open }) > 0 {
                let start = ContinuousClock.now
                var error: String?
                do {
                    let response = try await client.execute(HTTPClientRequest(url: base + "/health"), timeout: .seconds(5))
                    _ = try await response.body.collect(upTo: 1 << 16)
                    if response.status != .ok { error = "HTTP \(response.status.code)" }
                } catch let failure {
                    error = "\(type(of: failure))"
                }
                let ms = error == nil || error?.hasPrefix("HTTP") == true ? Double((ContinuousClock.now - start) / .microseconds(1)) / 1000 : 5000
                shared.withLockedValue { state in
                    state.health.append((.now, ms))
                    if let error { state.healthErrors[error, default: 0] += 1 }
                }
            }
            try? await sleepOnEventLoop(until: next)
        }
    }

    func sampleProc(shared: NIOLockedValueBox<Shared>, stop: NIOLockedValueBox<Bool>) async {
        while !stop.withLockedValue({ $0 }) {
            var sample = ProcSample()
            if let status = try? String(contentsOfFile: "/proc/\(serverPid)/status", encoding: .utf8) {
                for line in status.split(separator: "\n") {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    let value = Int(parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
                    switch parts[0] {
                    case "VmRSS": sample.rssKB = value
                    case "VmHWM": sample.hwmKB = value
                    case "Threads": sample.threads = value
                    default: break
                    }
                }
            }
            // Linux 6.2 on reports the open descriptors as /proc/PID/fd's size, without listing
            // them (a listing costs the kernel a dentry per descriptor: milliseconds at 10,000).
            var fdStat = stat()
            if stat("/proc/\(serverPid)/fd", &fdStat) == 0 && fdStat.st_size > 0 {
                sample.fds = Int(fdStat.st_size)
            } else {
                sample.fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(serverPid)/fd").count) ?? 0
            }
            shared.withLockedValue { $0.samples.append(sample) }
            try? await sleepOnEventLoop(until: .now() + .seconds(1))
        }
    }

    func procCPUTicks(_ pid: Int32) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 12 else { return 0 }
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    func driverCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The value at quantile `p` of `sorted` (nan when empty).
    func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count - 1)).rounded())))]
    }

    /// `value` to `places` (100: two decimals), -1 for nan (JSON has no nan).
    func rounded(_ value: Double, _ places: Double = 100) -> Double { value.isNaN ? -1 : (value * places).rounded() / places }

    /// The latencies by 10 s period of the bench (by the delta's stamp, and the probe's start), to
    /// tell the opening of the streams, the time all are open, and their endings apart.
    func periods(_ state: Shared, start: (clock: ContinuousClock.Instant, wall: Int64)) -> [[String: Any]] {
        let period: Int64 = 10_000_000_000
        var deltas: [Int: [Double]] = [:]
        for (latency, stamp) in zip(state.latencies, state.stamps) {
            deltas[Int(max(0, stamp - start.wall) / period), default: []].append(Double(latency) / 1e6)
        }
        var health: [Int: [Double]] = [:]
        for sample in state.health {
            health[Int(max(.zero, sample.at - start.clock) / .seconds(10)), default: []].append(sample.ms)
        }
        return Set(deltas.keys).union(health.keys).sorted().map { index in
            let lat = (deltas[index] ?? []).sorted()
            let probes = (health[index] ?? []).sorted()
            return ["from_s": index * 10, "deltas": lat.count, "lat_ms_p99": rounded(percentile(lat, 0.99)),
                    "health_ms_p99": rounded(percentile(probes, 0.99))]
        }
    }

    func report(_ state: Shared, openedIn: Duration, wall: Duration, serverTicks: Int, driverCPU: Double,
                start: (clock: ContinuousClock.Instant, wall: Int64)) -> [String: Any] {
        func seconds(_ duration: Duration) -> Double { Double(duration / .milliseconds(1)) / 1000 }
        let latencies = state.latencies.map { Double($0) / 1e6 }.sorted()
        // The deltas sent while every stream was open: the steady state, without the set-up of
        // new runs (opening) or their endings.
        let (plateauFrom, plateauTo) = (state.allOpenWall ?? .max, state.firstCloseWall ?? .max)
        let plateauLatencies = zip(state.latencies, state.stamps).filter { plateauFrom <= $0.1 && $0.1 <= plateauTo }
            .map { Double($0.0) / 1e6 }.sorted()
        let health = state.health.map(\.ms).sorted()
        let plateauEnd = state.firstCloseAt ?? .now + .seconds(1_000_000)
        let plateau = state.health.filter { sample in state.allOpenAt.map { $0 <= sample.at && sample.at <= plateauEnd } ?? false }
            .map(\.ms).sorted()
        let firstEvents = state.firstEventMs.sorted()
        let firstDeltas = state.firstDeltaLatencies.map { Double($0) / 1e6 }.sorted()
        let laterDeltas = state.laterDeltaLatencies.map { Double($0) / 1e6 }.sorted()
        let cpu = Double(serverTicks) / Double(clkTck)
        return [
            "streams": streams, "completed": state.completed, "dropped": state.dropped.values.reduce(0, +),
            "dropped_reasons": state.dropped, "most_open": state.mostOpen,
            "opened_in_s": rounded(seconds(openedIn), 10), "wall_s": rounded(seconds(wall), 10),
            "deltas": latencies.count,
            "lat_plateau_deltas": plateauLatencies.count,
            "lat_plateau_ms_p50": rounded(percentile(plateauLatencies, 0.5)), "lat_plateau_ms_p99": rounded(percentile(plateauLatencies, 0.99)),
            "lat_ms_p50": rounded(percentile(latencies, 0.5)), "lat_ms_p90": rounded(percentile(latencies, 0.9)),
            "lat_ms_p99": rounded(percentile(latencies, 0.99)), "lat_ms_max": rounded(latencies.last ?? .nan),
            "first_delta_ms_p50": rounded(percentile(firstDeltas, 0.5)), "first_delta_ms_p99": rounded(percentile(firstDeltas, 0.99)),
            "later_deltas_ms_p50": rounded(percentile(laterDeltas, 0.5)), "later_deltas_ms_p99": rounded(percentile(laterDeltas, 0.99)),
            "first_event_ms_p50": rounded(percentile(firstEvents, 0.5), 10), "first_event_ms_p99": rounded(percentile(firstEvents, 0.99), 10),
            "health_samples": health.count, "health_ms_p50": rounded(percentile(health, 0.5)),
            "health_ms_p99": rounded(percentile(health, 0.99)), "health_ms_max": rounded(health.last ?? .nan),
            "health_plateau_samples": plateau.count, "health_plateau_ms_p99": rounded(percentile(plateau, 0.99)),
            "health_errors": state.healthErrors,
            "server_rss_peak_mb": rounded(Double(state.samples.map(\.hwmKB).max() ?? 0) / 1024, 10),
            "server_rss_mb_at_most_open": rounded(Double(state.samples.map(\.rssKB).max() ?? 0) / 1024, 10),
            "server_fds_peak": state.samples.map(\.fds).max() ?? 0,
            "server_threads_peak": state.samples.map(\.threads).max() ?? 0,
            "server_cpu_s": rounded(cpu, 10),
            "server_cpu_us_per_delta": latencies.isEmpty ? -1 : rounded(cpu * 1e6 / Double(latencies.count), 10),
            "driver_cpu_s": rounded(driverCPU, 10),
            "by_10s": periods(state, start: start),
        ]
    }
}


/// One streamed run on its own connection (after NIOHTTP1's client codec): sends the request,
/// scans the event stream as it arrives (`EventScanner`), bounds the silence between reads and
/// the whole stream, and completes `outcome` once, at the response's end or its failure. It
/// touches the driver's shared counters only when the stream opens (HTTP 200), not per event.
final class StreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    /// How one stream ended: dropped for a reason, or not; what it measured if it read to the end.
    struct Outcome: Sendable {
        var opened = false
        var droppedFor: String?
        var latencies: [Int64]?
        var stamps: [Int64] = []
        var firstEventMs: Double?
    }

    /// The limits one stream is held to, and what it must see to be complete.
    struct Limits: Sendable {
        var deltas: Int
        /// Every stream of the bench: the one that makes that many open stamps `allOpenAt`.
        var streams: Int
        var readTimeout: TimeAmount
        var streamTimeout: TimeAmount
    }

    /// Sent through the pipeline to end a stream early (the bench's deadline).
    struct Abort: Sendable {
        let reason: String
    }

    private let request: HTTPRequestHead
    private let body: ByteBuffer
    private let started: NIODeadline
    private let limits: Limits
    private let shared: NIOLockedValueBox<StreamsDriverCommand.Shared>
    private let outcome: EventLoopPromise<Outcome>
    private var scanner: EventScanner
    private var status: HTTPResponseStatus?
    /// A refusal's body (not HTTP 200), for the drop reason.
    private var refusal = ""
    private var opened = false
    private var finished = false
    private var firstEventMs: Double?
    private var lastReadAt: NIODeadline
    private var readCheck: Scheduled<Void>?
    private var streamCheck: Scheduled<Void>?

    init(request: HTTPRequestHead, body: ByteBuffer, started: NIODeadline, limits: Limits,
         shared: NIOLockedValueBox<StreamsDriverCommand.Shared>, outcome: EventLoopPromise<Outcome>) {
        self.request = request
        self.body = body
        self.started = started
        self.limits = limits
        self.shared = shared
        self.outcome = outcome
        self.scanner = EventScanner(deltas: limits.deltas)
        self.lastReadAt = started
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        lastReadAt = .now()
        let loop = context.eventLoop.assumeIsolated()
        streamCheck = loop.scheduleTask(deadline: started + limits.streamTimeout) { [self] in
            finish(context: context, droppedFor: "stream timeout (\(limits.streamTimeout.nanoseconds / 1_000_000_000) s)")
        }
        scheduleReadCheck(context: context, at: lastReadAt + limits.readTimeout)
        context.fireChannelActive()
    }

    /// Drops the stream when nothing was read for `readTimeout`; else looks again when that is due.
    private func scheduleReadCheck(context: ChannelHandlerContext, at deadline: NIODeadline) {
        readCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            let due = lastReadAt + limits.readTimeout
            if due <= .now() {
                finish(context: context, droppedFor: "read timeout (\(limits.readTimeout.nanoseconds / 1_000_000_000) s)")
            } else {
                scheduleReadCheck(context: context, at: due)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        lastReadAt = .now()
        switch unwrapInboundIn(data) {
        case .head(let response):
            status = response.status
            guard response.status == .ok else { return }
            opened = true
            let streams = limits.streams
            shared.withLockedValue { state in
                state.open += 1
                state.mostOpen = max(state.mostOpen, state.open)
                if state.allOpenAt == nil && state.open >= streams {
                    state.allOpenAt = .now
                    state.allOpenWall = wallNanos()
                }
            }
        case .body(let buffer):
            guard status == .ok else {
                if refusal.utf8.count < 1 << 16 { refusal += String(buffer: buffer) }
                return
            }
            buffer.withUnsafeReadableBytes { scanner.scan($0) }
            if firstEventMs == nil && scanner.sawData {
                firstEventMs = Double((NIODeadline.now() - started).nanoseconds / 1000) / 1000
            }
        case .end:
            guard let status, status == .ok else {
                finish(context: context, droppedFor: "HTTP \(status?.code ?? 0): \(refusal.prefix(120))")
                return
            }
            let ok = scanner.lastRunEvent == "thread.run.completed" && scanner.sawDone && scanner.latencies.count == limits.deltas
            finish(context: context, droppedFor: ok ? nil : "ended \(scanner.lastRunEvent ?? "nil"), done=\(scanner.sawDone), "
                + "deltas \(min(scanner.latencies.count, limits.deltas))/\(limits.deltas)", measured: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context, droppedFor: "connection closed before the end")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context: context, droppedFor: "\(type(of: error)): \(String(describing: error).prefix(80))")
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let abort = event as? Abort {
            finish(context: context, droppedFor: abort.reason)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context: context, droppedFor: "connection closed before the end")
    }

    /// Completes the outcome (once) and closes the connection; `measured`: the response reached
    /// its end, so its latencies and first-event time count.
    private func finish(context: ChannelHandlerContext, droppedFor reason: String?, measured: Bool = false) {
        guard !finished else { return }
        finished = true
        readCheck?.cancel()
        streamCheck?.cancel()
        outcome.succeed(Outcome(opened: opened, droppedFor: reason,
                                latencies: measured ? scanner.latencies : nil, stamps: measured ? scanner.stamps : [],
                                firstEventMs: measured ? firstEventMs : nil))
        context.close(promise: nil)
    }
}

/// Reads a server-sent event stream in place as its bytes arrive, in whatever pieces, keeping
/// no bytes but the current event's name: for each `data:` line of a `thread.message.delta`
/// event, the wall clock at receipt minus each `<t=NANOS>` stamp in it; the last
/// `thread.run.*` event (not `thread.run.step.*`) that had data; whether `event: done` had
/// data; whether any data line came at all.
struct EventScanner {
    /// What the current line is, as far as its first bytes tell.
    private enum Line { case head, event, data, skip }
    /// The events that matter here.
    private enum Event { case delta, run, done, other }

    private static let eventPrefix = Array("event: ".utf8)
    private static let dataPrefix = Array("data: ".utf8)
    private static let deltaName = Array("thread.message.delta".utf8)
    private static let doneName = Array("done".utf8)
    private static let runPrefix = Array("thread.run.".utf8)
    private static let stepPrefix = Array("thread.run.step".utf8)

    private var line = Line.head
    /// Bytes of the current line read so far while it may still be `event: ` or `data: `.
    private var headCount = 0
    private var mayBeEvent = true
    private var mayBeData = true
    private var name: [UInt8] = []
    private var event = Event.other
    /// How much of `<t=` was just read (3: reading the stamp's digits), and the digits so far.
    private var stampState = 0
    private var stamp: Int64 = 0
    /// The wall clock for the piece being scanned, read at its first stamp.
    private var now: Int64 = 0
    private(set) var latencies: [Int64] = []
    /// Each latency's stamp, in the same order.
    private(set) var stamps: [Int64] = []
    private var lastRunName: [UInt8] = []
    private(set) var sawDone = false
    private(set) var sawData = false

    init(deltas: Int) {
        latencies.reserveCapacity(deltas)
        stamps.reserveCapacity(deltas)
        name.reserveCapacity(64)
    }

    var lastRunEvent: String? { lastRunName.isEmpty ? nil : String(decoding: lastRunName, as: UTF8.self) }

    mutating func scan(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        now = 0
        let count = bytes.count
        var index = 0
        while index < count {
            switch line {
            case .skip,
                 .data where event != .delta:  // nothing more to read in this line
                guard let newline = memchr(base + index, Int32(UInt8(ascii: "\n")), count - index) else { return }
                index = base.distance(to: UnsafeRawPointer(newline)) + 1
                newLine()
            case .data:
                while index < count {
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\n") {
                        endStamp()
                        newLine()
                        break
                    }
                    step(byte)
                }
            case .event:
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\n") {
                    event = Self.classify(name)
                    newLine()
                } else if byte != UInt8(ascii: "\r") && name.count < 64 {
                    name.append(byte)
                }
            case .head:
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\n") {
                    newLine()
                    continue
                }
                mayBeEvent = mayBeEvent && headCount < Self.eventPrefix.count && Self.eventPrefix[headCount] == byte
                mayBeData = mayBeData && headCount < Self.dataPrefix.count && Self.dataPrefix[headCount] == byte
                headCount += 1
                if mayBeEvent && headCount == Self.eventPrefix.count {
                    line = .event
                    name.removeAll(keepingCapacity: true)
                } else if mayBeData && headCount == Self.dataPrefix.count {
                    line = .data
                    startData()
                } else if !mayBeEvent && !mayBeData {
                    line = .skip
                }
            }
        }
    }

    private mutating func newLine() {
        line = .head
        headCount = 0
        mayBeEvent = true
        mayBeData = true
    }

    /// A `data:` line begins: the current event had data.
    private mutating func startData() {
        sawData = true
        stampState = 0
        switch event {
        case .done: sawDone = true
        case .run: lastRunName = name
        case .delta, .other: break
        }
    }

    /// One byte of a delta's data line: looks for `<t=` and reads the digits after it.
    private mutating func step(_ byte: UInt8) {
        switch stampState {
        case 3:
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                stamp = stamp &* 10 &+ Int64(byte &- UInt8(ascii: "0"))
                return
            }
            endStamp()
            stampState = byte == UInt8(ascii: "<") ? 1 : 0
        case 2:
            if byte == UInt8(ascii: "=") {
                stampState = 3
                stamp = 0
            } else {
                stampState = byte == UInt8(ascii: "<") ? 1 : 0
            }
        case 1:
            stampState = byte == UInt8(ascii: "t") ? 2 : byte == UInt8(ascii: "<") ? 1 : 0
        default:
            if byte == UInt8(ascii: "<") { stampState = 1 }
        }
    }

    /// Records the stamp being read, if any.
    private mutating func endStamp() {
        guard stampState == 3 else { return }
        stampState = 0
        if now == 0 { now = wallNanos() }
        latencies.append(now - stamp)
        stamps.append(stamp)
    }

    private static func classify(_ name: [UInt8]) -> Event {
        if name == deltaName { return .delta }
        if name == doneName { return .done }
        if name.starts(with: runPrefix) && !name.starts(with: stepPrefix) { return .run }
        return .other
    }
}
