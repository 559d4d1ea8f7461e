import Foundation
import NIOCore
import NIOConcurrencyHelpers

/// What the kernel answers for one execution.
struct KernelResult: Decodable, Sendable {
    struct OutputFile: Decodable, Sendable {
        var path: String
        var size: Int?
    }

    var id: Int?
    var status: String
    var stdout: String?
    var stderr: String?
    var error: String?
    var files: [OutputFile]?
    var images: [String]?
}

/// One long-lived sandboxed interpreter: variables persist from one execution to the next.
/// Executions run one at a time; one that overruns the time limit kills the sandbox, and the
/// next execution starts a fresh one.
actor CodeSession {
    let directory: String
    let sandbox: Sandbox
    private var process: Process?
    private var input: FileHandle?
    private var lines: AsyncStream<String>?
    private var nextID = 0
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    nonisolated let lastUsed = NIOLockedValueBox(ContinuousClock.now)

    init(directory: String, sandbox: Sandbox) {
        self.directory = directory
        self.sandbox = sandbox
    }

    /// Runs `code`; a timeout or a dead sandbox is reported in the result, not thrown.
    func execute(_ code: String) async throws -> KernelResult {
        await acquire()
        defer { release() }
        lastUsed.withLockedValue { $0 = .now }
        if process?.isRunning != true { try await start() }
        nextID += 1
        let request: JSONValue = ["id": .int(nextID), "code": .string(code),
                                  "timeout": .int(Int(sandbox.limits.timeout.components.seconds))]
        input?.write(Data((request.jsonString + "\n").utf8))
        let timedOut = NIOLockedValueBox(false)
        let deadline = sandbox.limits.timeout + .seconds(2)
        let watchdog = Task { [weak self] in
            try await Task.sleep(for: deadline)
            timedOut.withLockedValue { $0 = true }
            await self?.stop()
        }
        defer { watchdog.cancel() }
        while let line = await nextLine() {
            // Only the kernel's answer to this request counts; anything else on the channel is ignored.
            guard let result = try? JSONCoding.decode(KernelResult.self, from: line), result.id == nextID else { continue }
            return try enforceQuota(result)
        }
        stop()
        let seconds = sandbox.limits.timeout.components.seconds
        let message = timedOut.withLockedValue { $0 }
            ? "Execution timed out after \(seconds) s and was stopped; the session was restarted, so its variables are gone."
            : "The Python session ended unexpectedly (it may have run out of memory); it was restarted, so its variables are gone."
        return KernelResult(id: nextID, status: "timeout", stdout: nil, stderr: nil, error: message, files: nil, images: nil)
    }

    /// The most the session folder may hold; past it, the execution's files are removed.
    static let quotaBytes = 1024 * 1024 * 1024

    /// Keeps /mnt/data within its quota: an execution that overfills it loses the files it wrote.
    private func enforceQuota(_ result: KernelResult) throws -> KernelResult {
        let used = Self.size(of: directory)
        guard used > Self.quotaBytes else { return result }
        for file in result.files ?? [] where file.path.hasPrefix("/mnt/data/") {
            let name = String(file.path.dropFirst("/mnt/data/".count))
            if !name.contains("..") { unlink(directory + "/" + name) }
        }
        var trimmed = result
        trimmed.status = "error"
        trimmed.files = []
        trimmed.images = []
        trimmed.error = (result.error.map { $0 + "\n" } ?? "")
            + "The files in /mnt/data exceeded the session's \(Self.quotaBytes / (1024 * 1024)) MiB quota; the files this execution wrote were removed."
        return trimmed
    }

    static func size(of directory: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return 0 }
        var total = 0
        while let name = walker.nextObject() as? String {
            var info = stat()
            if lstat(directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { total += Int(info.st_size) }
        }
        return total
    }

    private func nextLine() async -> String? {
        guard let lines else { return nil }
        var iterator = lines.makeAsyncIterator()
        return await iterator.next()
    }

    private func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = sandbox.arguments(sessionDirectory: directory)
        process.environment = [:]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        let (lines, continuation) = AsyncStream.makeStream(of: String.self)
        let splitter = NIOLockedValueBox(SSELineSplitter())
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                continuation.finish()
                return
            }
            for line in splitter.withLockedValue({ $0.push(ByteBuffer(bytes: data)) }) { continuation.yield(line) }
        }
        try process.run()
        self.process = process
        self.input = stdin.fileHandleForWriting
        self.lines = lines
        // The kernel announces itself before taking requests.
        let ready = Task { [weak self] in
            try await Task.sleep(for: .seconds(15))
            await self?.stop()
        }
        defer { ready.cancel() }
        while let line = await nextLine() {
            if line.contains("\"ready\"") { return }
        }
        stop()
        throw APIError.server("The code sandbox did not start.")
    }

    /// Kills the sandbox (bwrap's --die-with-parent takes everything inside with it).
    func stop() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        try? input?.close()
        process = nil
        input = nil
        lines = nil
    }

    private func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
