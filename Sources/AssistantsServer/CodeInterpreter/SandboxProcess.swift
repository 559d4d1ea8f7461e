import NIOConcurrencyHelpers
import NIOCore
import Subprocess

/// One running sandbox (the kernel's supervisor inside bwrap), spawned with swift-subprocess: its
/// standard input is written and its standard output read by swift-subprocess's own I/O thread,
/// so a request larger than the pipe's buffer, or a kernel that stops reading, never blocks a
/// thread. Stopping it cancels the task that owns it, which kills it (SIGKILL) and reaps it;
/// bwrap's --die-with-parent takes everything inside with it.
final class SandboxProcess: Sendable {
    /// The kernel's output, line by line; it ends when the sandbox's standard output closes.
    let lines: AsyncStream<String>
    private let requests: AsyncStream<[UInt8]>.Continuation
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let running = NIOLockedValueBox(true)

    /// Whether the sandbox's output is still open (it has not exited).
    var isRunning: Bool { running.withLockedValue { $0 } }

    /// Starts `executable` with an empty environment; returns once it is spawned, throws if it cannot be.
    static func start(executable: String, arguments: [String]) async throws -> SandboxProcess {
        let process = SandboxProcess()
        try await process.spawn(executable: executable, arguments: arguments)
        return process
    }

    private init() {
        (lines, lineSink) = AsyncStream.makeStream(of: String.self)
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        requests = continuation
        pending = NIOLockedValueBox(stream)
    }

    private let lineSink: AsyncStream<String>.Continuation
    /// The requests, until the body of `run` takes them.
    private let pending: NIOLockedValueBox<AsyncStream<[UInt8]>?>

    private func spawn(executable: String, arguments: [String]) async throws {
        let requests = pending.withLockedValue { stream in
            defer { stream = nil }
            return stream
        } ?? AsyncStream { $0.finish() }
        let spawned = SpawnSignal()
        let task = Task { [lineSink, running] in
            defer {
                running.withLockedValue { $0 = false }
                lineSink.finish()
            }
            do {
                _ = try await Subprocess.run(
                    .path(.init(executable)), arguments: Arguments(arguments), environment: .custom([:]),
                    input: .inputWriter, output: .sequence, error: .discarded
                ) { execution in
                    spawned.succeed()
                    try await Self.pump(requests: requests, into: execution.standardInputWriter,
                                        output: execution.standardOutput, lines: lineSink)
                }
            } catch {
                spawned.fail(error)
            }
        }
        self.task.withLockedValue { $0 = task }
        try await spawned.started()
    }

    /// Writes each request to the kernel while reading its output into lines; returns when the
    /// output ends (the sandbox exited). A failed write (the kernel died: EPIPE) ends the writes only.
    private static func pump(requests: AsyncStream<[UInt8]>, into writer: StandardInputWriter,
                             output: SubprocessOutputSequence, lines: AsyncStream<String>.Continuation) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await request in requests {
                    do { _ = try await writer.write(request) } catch { return }
                }
            }
            var splitter = SSELineSplitter()
            for try await buffer in output {
                let bytes = buffer.withUnsafeBytes { ByteBuffer(bytes: $0) }
                for line in splitter.push(bytes) { lines.yield(line) }
            }
            group.cancelAll()
        }
    }

    /// Queues one request line for the kernel; it is written without blocking anyone.
    func send(_ bytes: [UInt8]) {
        requests.yield(bytes)
    }

    /// Kills the sandbox; its lines end once it is gone.
    func stop() {
        requests.finish()
        task.withLockedValue { $0?.cancel() }
    }
}

/// Tells `SandboxProcess.spawn` once whether the child was started.
private final class SpawnSignal: Sendable {
    private let state = NIOLockedValueBox<(done: Bool, waiter: CheckedContinuation<Void, any Error>?, error: (any Error)?)>((false, nil, nil))

    func succeed() { finish(nil) }
    func fail(_ error: any Error) { finish(error) }

    private func finish(_ error: (any Error)?) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, any Error>? in
            guard !state.done else { return nil }
            state.done = true
            state.error = error
            defer { state.waiter = nil }
            return state.waiter
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume() }
    }

    func started() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result = state.withLockedValue { state -> (done: Bool, error: (any Error)?) in
                if !state.done { state.waiter = continuation }
                return (state.done, state.error)
            }
            guard result.done else { return }
            if let error = result.error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }
}
