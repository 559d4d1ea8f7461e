import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Holds thousands of streamed runs open at once (bench/streams.sh). Opens `streams` runs,
/// `rate` a second, each `POST /v1/threads/runs {stream: true}` on a connection of its own, and
/// reads every event to the end. For each `thread.message.delta` it records the wall clock at
/// receipt minus the upstream's `<t=NANOS>` stamp: the latency the server adds (plus loopback
/// and this reader, both small). Meanwhile `GET /health` every `health-interval` on a connection
/// of its own while any stream is open, and once a second the server's RSS, CPU and descriptors
/// from /proc. A stream is completed when it saw every stamp, `thread.run.completed` and
/// `event: done`; anything else is dropped, with its reason. Prints one `RESULT {json}` line, as
/// bench/streams_driver.py does.
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

    /// Counters shared by the streams and the samplers.
    struct Shared {
        var open = 0
        var mostOpen = 0
        var completed = 0
        var dropped: [String: Int] = [:]
        var allOpenAt: ContinuousClock.Instant?
        var firstCloseAt: ContinuousClock.Instant?
        var latencies: [Int64] = []
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
    }

    func run() async throws {
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        let limit = raiseOpenFiles()
        if limit < streams + 64 {
            FileHandle.standardError.write(Data("warning: the driver may open \(limit) files, fewer than \(streams) streams need\n".utf8))
        }
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .seconds(30), read: .seconds(Int64(readTimeout))),
            connectionPool: .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: streams + 16))
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let prober = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: .init(connectionPool: .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)))
        do {
            try await measure(base: base, client: client, prober: prober)
        } catch {
            try? await client.shutdown()
            try? await prober.shutdown()
            throw error
        }
        try await client.shutdown()
        try await prober.shutdown()
    }

    func measure(base: String, client: HTTPClient, prober: HTTPClient) async throws {
        let assistantID = try await createAssistant(base: base, client: client)
        let shared = NIOLockedValueBox(Shared())
        let ticks0 = procCPUTicks(serverPid)
        let usage0 = driverCPUSeconds()
        let t0 = ContinuousClock.now
        let stop = NIOLockedValueBox(false)
        async let health: Void = sampleHealth(base: base, client: prober, shared: shared, stop: stop)
        async let proc: Void = sampleProc(shared: shared, stop: stop)
        var openedIn = Duration.zero
        let finished = await withTaskGroup(of: Bool.self) { group -> Bool in
            for index in 0..<streams {
                let due = t0 + .nanoseconds(Int64(Double(index) / rate * 1e9))
                if due > .now { try? await Task.sleep(until: due, clock: .continuous) }
                group.addTask { await self.oneStream(index: index, base: base, assistantID: assistantID, client: client, shared: shared) }
            }
            openedIn = .now - t0
            // The bench's own deadline: streams still open then are dropped.
            group.addTask {
                try? await Task.sleep(until: t0 + .seconds(deadline), clock: .continuous)
                return false
            }
            var done = 0
            for await _ in group {
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
        let result = shared.withLockedValue { report($0, openedIn: openedIn, wall: wall, serverTicks: ticks, driverCPU: driverCPU) }
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

    /// One streamed run, read to its end.
    func oneStream(index: Int, base: String, assistantID: String, client: HTTPClient, shared: NIOLockedValueBox<Shared>) async -> Bool {
        var request = HTTPClientRequest(url: base + "/v1/threads/runs")
        request.method = .POST
        request.headers = Self.headers
        request.body = .bytes(ByteBuffer(string: #"{"assistant_id":"\#(assistantID)","stream":true,"thread":{"messages":[{"role":"user","content":"streams bench \#(index)"}]}}"#))
        let started = ContinuousClock.now
        var opened = false
        var reader = EventReader()
        var latencies: [Int64] = []
        latencies.reserveCapacity(deltas)
        var firstEventMs: Double?
        /// Records the stream's end: closed, if it opened, and completed, or dropped for `reason`.
        func finish(droppedFor reason: String?) -> Bool {
            shared.withLockedValue { state in
                if opened {
                    state.open -= 1
                    if state.firstCloseAt == nil { state.firstCloseAt = .now }
                }
                if let reason { state.dropped[reason, default: 0] += 1 } else { state.completed += 1 }
            }
            return reason == nil
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(Int64(streamTimeout)))
            guard response.status == .ok else {
                let body = try? await response.body.collect(upTo: 1 << 16)
                return finish(droppedFor: "HTTP \(response.status.code): \(body.map { String(buffer: $0).prefix(120) } ?? "")")
            }
            opened = true
            shared.withLockedValue { state in
                state.open += 1
                state.mostOpen = max(state.mostOpen, state.open)
                if state.allOpenAt == nil && state.open >= streams { state.allOpenAt = .now }
            }
            for try await buffer in response.body {
                reader.feed(buffer) { event, data in
                    if firstEventMs == nil { firstEventMs = Double((ContinuousClock.now - started) / .microseconds(1)) / 1000 }
                    if event == "thread.message.delta" {
                        let now = wallNanos()
                        for stamp in Self.stamps(in: data) { latencies.append(now - stamp) }
                    }
                }
            }
        } catch {
            return finish(droppedFor: "\(type(of: error)): \(String(describing: error).prefix(80))")
        }
        shared.withLockedValue { state in
            state.latencies += latencies
            if let firstEventMs { state.firstEventMs.append(firstEventMs) }
        }
        let ok = reader.lastRunEvent == "thread.run.completed" && reader.sawDone && latencies.count == deltas
        return finish(droppedFor: ok ? nil
            : "ended \(reader.lastRunEvent ?? "nil"), done=\(reader.sawDone), deltas \(min(latencies.count, deltas))/\(deltas)")
    }

    /// The `<t=NANOS>` stamps in a data line.
    static func stamps(in data: Substring.UTF8View) -> [Int64] {
        var stamps: [Int64] = []
        var bytes = data[...]
        let marker = Array("<t=".utf8)
        while let start = bytes.firstRange(of: marker) {
            var value: Int64 = 0
            var index = start.upperBound
            while index < bytes.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                index = bytes.index(after: index)
            }
            stamps.append(value)
            bytes = bytes[index...]
        }
        return stamps
    }

    func sampleHealth(base: String, client: HTTPClient, shared: NIOLockedValueBox<Shared>, stop: NIOLockedValueBox<Bool>) async {
        let interval = Duration.nanoseconds(Int64(healthInterval * 1e9))
        var next = ContinuousClock.now
        while !stop.withLockedValue({ $0 }) {
            next += interval
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
            try? await Task.sleep(until: next, clock: .continuous)
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
            sample.fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(serverPid)/fd").count) ?? 0
            shared.withLockedValue { $0.samples.append(sample) }
            try? await Task.sleep(for: .seconds(1))
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

    func report(_ state: Shared, openedIn: Duration, wall: Duration, serverTicks: Int, driverCPU: Double) -> [String: Any] {
        func seconds(_ duration: Duration) -> Double { Double(duration / .milliseconds(1)) / 1000 }
        func percentile(_ sorted: [Double], _ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count - 1)).rounded())))]
        }
        func rounded(_ value: Double, _ places: Double = 100) -> Double { value.isNaN ? -1 : (value * places).rounded() / places }
        let latencies = state.latencies.map { Double($0) / 1e6 }.sorted()
        let health = state.health.map(\.ms).sorted()
        let plateauEnd = state.firstCloseAt ?? .now + .seconds(1_000_000)
        let plateau = state.health.filter { sample in state.allOpenAt.map { $0 <= sample.at && sample.at <= plateauEnd } ?? false }
            .map(\.ms).sorted()
        let firstEvents = state.firstEventMs.sorted()
        let cpu = Double(serverTicks) / Double(clkTck)
        return [
            "streams": streams, "completed": state.completed, "dropped": state.dropped.values.reduce(0, +),
            "dropped_reasons": state.dropped, "most_open": state.mostOpen,
            "opened_in_s": rounded(seconds(openedIn), 10), "wall_s": rounded(seconds(wall), 10),
            "deltas": latencies.count,
            "lat_ms_p50": rounded(percentile(latencies, 0.5)), "lat_ms_p90": rounded(percentile(latencies, 0.9)),
            "lat_ms_p99": rounded(percentile(latencies, 0.99)), "lat_ms_max": rounded(latencies.last ?? .nan),
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
        ]
    }
}

/// Splits a server-sent event stream into events as its bytes arrive, in whatever pieces.
struct EventReader {
    private var pending: [UInt8] = []
    private var event = ""
    private(set) var lastRunEvent: String?
    private(set) var sawDone = false

    /// Feeds bytes; calls `onData(event, data)` for each complete `data:` line.
    mutating func feed(_ buffer: ByteBuffer, onData: (String, Substring.UTF8View) -> Void) {
        pending += buffer.readableBytesView
        var lineStart = 0
        while let newline = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = Substring(decoding: pending[lineStart..<newline], as: UTF8.self)
            lineStart = newline + 1
            if line.hasPrefix("event: ") {
                event = String(line.dropFirst(7))
            } else if line.hasPrefix("data: ") {
                if event == "done" {
                    sawDone = true
                } else if event.hasPrefix("thread.run.") && !event.hasPrefix("thread.run.step") {
                    lastRunEvent = event
                }
                onData(event, line.dropFirst(6).utf8)
            }
        }
        pending.removeFirst(lineStart)
    }
}
