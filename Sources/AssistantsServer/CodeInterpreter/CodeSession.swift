import Foundation
import NIOCore
import NIOConcurrencyHelpers

/// What the kernel answers for one execution. Everything in it comes from inside the sandbox
/// and is treated as hostile: only the answer carrying the request's token counts, and paths in
/// `files` are only ever used as name chains under the session folder (`SandboxFolder`).
struct KernelResult: Decodable, Sendable {
    /// One file the execution created or changed.
    struct OutputFile: Decodable, Sendable {
        var path: String
        var size: Int?
    }

    /// How the kernel's worker ended, when it did.
    struct Exit: Decodable, Sendable {
        var signal: Int?
        var code: Int?
    }

    var id: Int?
    var token: String?
    var status: String
    var stdout: String?
    var stderr: String?
    var error: String?
    var files: [OutputFile]?
    var images: [String]?
    /// The kernel's worker died or was killed during this execution and a fresh one replaces it.
    var restarted: Bool?
    var exit: Exit?
}

/// One long-lived sandboxed interpreter: variables persist from one execution to the next.
/// Executions run one at a time; one that overruns the time limit kills the sandbox, and the
/// next execution starts a fresh one.
actor CodeSession {
    let directory: String
    let sandbox: Sandbox
    private var kernel: SandboxProcess?
    private var lines: AsyncStream<String>?
    private var cgroup: SandboxCgroup?
    private var nextID = 0
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    nonisolated let lastUsed = NIOLockedValueBox(ContinuousClock.now)

    init(directory: String, sandbox: Sandbox) {
        self.directory = directory
        self.sandbox = sandbox
    }

    /// 32 hex digits from the system's random generator: the token of one request.
    static func makeToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    var memoryMiB: Int { sandbox.limits.memory / (1024 * 1024) }

    /// Runs `code`; a timeout or a dead sandbox is reported in the result, not thrown.
    func execute(_ code: String) async throws -> KernelResult {
        await acquire()
        defer { release() }
        lastUsed.withLockedValue { $0 = .now }
        if kernel?.isRunning != true { try await start() }
        nextID += 1
        let token = Self.makeToken()
        let oomBefore = await oomKills()
        let request: JSONValue = ["id": .int(nextID), "token": .string(token), "code": .string(code),
                                  "timeout": .int(Int(sandbox.limits.timeout.components.seconds))]
        let timedOut = NIOLockedValueBox(false)
        // The kernel's supervisor stops a hung worker itself at timeout + 1.5 s; this is for a hung sandbox.
        let deadline = sandbox.limits.timeout + .seconds(5)
        let watchdog = Task { [weak self] in
            try await Task.sleep(for: deadline)
            timedOut.withLockedValue { $0 = true }
            await self?.stop()
        }
        defer { watchdog.cancel() }
        // Written by swift-subprocess's I/O thread: a request larger than the pipe's buffer waits
        // there for the kernel to read, never on a loop; a dead kernel ends the write (EPIPE) and
        // the missing answer then reports it.
        kernel?.send(Array((request.jsonString + "\n").utf8))
        while let line = await nextLine() {
            // Only the answer carrying this request's token counts: stale or forged lines are dropped.
            guard let result = try? JSONCoding.decode(KernelResult.self, from: line),
                  result.token == token, result.id == nextID else { continue }
            let kills = await oomKills() - oomBefore
            let checked = explainMemory(result, oomKills: kills)
            return try await enforceQuota(checked)
        }
        let oomKilled = await oomKills() > oomBefore
        stop()
        let seconds = sandbox.limits.timeout.components.seconds
        let message: String
        if timedOut.withLockedValue({ $0 }) {
            message = "Execution timed out after \(seconds) s and was stopped; the session was restarted, so its variables are gone."
        } else if oomKilled {
            message = "The Python session exceeded its memory limit of \(memoryMiB) MiB and was stopped; it was restarted, so its variables are gone."
        } else {
            message = "The Python session ended unexpectedly; it was restarted, so its variables are gone."
        }
        return KernelResult(id: nextID, token: token, status: timedOut.withLockedValue({ $0 }) ? "timeout" : "error",
                            stdout: nil, stderr: nil, error: message, files: nil, images: nil, restarted: true, exit: nil)
    }

    /// The OOM kills of the sandbox's cgroup so far (0 without one).
    private func oomKills() async -> Int {
        guard let cgroup else { return 0 }
        return (try? await Offload.run { cgroup.oomKills() }) ?? 0
    }

    /// Names the memory limit when the cgroup killed a process of this execution.
    private func explainMemory(_ result: KernelResult, oomKills: Int) -> KernelResult {
        guard oomKills > 0 else { return result }
        var explained = result
        explained.status = "error"
        if result.restarted == true {
            explained.error = "The Python session exceeded its memory limit of \(memoryMiB) MiB and was stopped; it was restarted, so its variables are gone."
        } else {
            explained.error = (result.error.map { $0 + "\n" } ?? "")
                + "The Python session exceeded its memory limit of \(memoryMiB) MiB: \(oomKills) of its processes were stopped."
        }
        return explained
    }

    /// Keeps /mnt/data within its quota: an execution that overfills it loses the files it wrote.
    /// The walk and the removals go through `SandboxFolder` (descriptors, no links followed), and
    /// the reported paths are only name chains inside the folder, so nothing outside can be touched.
    func enforceQuota(_ result: KernelResult) async throws -> KernelResult {
        let quota = sandbox.limits.diskQuota
        let directory = directory
        let written = (result.files ?? []).compactMap { SandboxFolder.components(ofSandboxPath: $0.path) }
        let over = try await Offload.run { () -> Bool in
            let folder = try SandboxFolder(path: directory)
            if let used = folder.usage(), used <= quota { return false }
            for name in written { folder.removeFile(name) }
            return true
        }
        guard over else { return result }
        var trimmed = result
        trimmed.status = "error"
        trimmed.files = []
        trimmed.images = []
        trimmed.error = (result.error.map { $0 + "\n" } ?? "")
            + "The files in /mnt/data exceeded the session's \(quota / (1024 * 1024)) MiB quota; the files this execution wrote were removed."
        return trimmed
    }

    private func nextLine() async -> String? {
        guard let lines else { return nil }
        var iterator = lines.makeAsyncIterator()
        return await iterator.next()
    }

    private func start() async throws {
        if let cgroup {
            self.cgroup = nil
            Self.remove(cgroup)
        }
        let limits = sandbox.limits
        let cgroup = try await Offload.run { [sandbox] in
            try sandbox.cgroups?.create(memoryBytes: limits.memory, pidsMax: limits.cgroupTasks)
        }
        self.cgroup = cgroup
        let launch = sandbox.launch(sessionDirectory: directory, cgroup: cgroup)
        let kernel = try await SandboxProcess.start(executable: launch.executable, arguments: launch.arguments)
        self.kernel = kernel
        self.lines = kernel.lines
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
        throw DomainError.server("The code sandbox did not start.")
    }

    /// Kills the sandbox (bwrap's --die-with-parent takes everything inside with it) and removes its cgroup.
    func stop() {
        kernel?.stop()
        kernel = nil
        lines = nil
        if let cgroup {
            self.cgroup = nil
            Self.remove(cgroup)
        }
    }

    /// Removes a stopped sandbox's cgroup in the background (it waits for the tasks to be gone).
    private static func remove(_ cgroup: SandboxCgroup) {
        Task.detached { try? await Offload.run { cgroup.remove() } }
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
