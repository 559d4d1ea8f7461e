import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import AssistantsServer

/// The descriptor-based handling of a session folder (issue 11): symlinks planted in /mnt/data
/// and paths reported by the kernel never lead the server (root) outside the folder.
@Suite struct SandboxFolderTests {
    /// A session folder and, beside it, an "outside" folder holding a file that must survive.
    private func layout() throws -> (session: String, outside: String, victim: String) {
        let base = TestSupport.temporaryDirectory()
        let session = base + "/session", outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: session, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let victim = outside + "/host-secret.txt"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: victim))
        return (session, outside, victim)
    }

    @Test func reportedPathsMustBePlainNameChains() {
        #expect(SandboxFolder.components(ofSandboxPath: "/mnt/data/a.csv") == ["a.csv"])
        #expect(SandboxFolder.components(ofSandboxPath: "/mnt/data/sub/b.png") == ["sub", "b.png"])
        for bad in ["/mnt/data/../etc/passwd", "/mnt/data/", "/mnt/data//x", "/mnt/data/./x", "/etc/passwd",
                    "mnt/data/x", "/mnt/data/a/../../x", "/mnt/data/a\u{0}b", "/mnt/database"] {
            #expect(SandboxFolder.components(ofSandboxPath: bad) == nil, "\(bad)")
        }
    }

    @Test func usageDoesNotFollowASymlinkToAFolderOutside() throws {
        let (session, outside, _) = try layout()
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: session + "/mine.bin"))
        try FileManager.default.createSymbolicLink(atPath: session + "/link", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: session + "/filelink", withDestinationPath: outside + "/host-secret.txt")
        let folder = try SandboxFolder(path: session)
        #expect(folder.usage() == 100)
    }

    @Test func quotaRemovalThroughASymlinkedFolderLeavesTheHostFile() throws {
        let (session, outside, victim) = try layout()
        try FileManager.default.createSymbolicLink(atPath: session + "/link", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: session + "/direct", withDestinationPath: victim)
        let folder = try SandboxFolder(path: session)
        // What the attacker's kernel would report: the host file through the planted links.
        #expect(!folder.removeFile(["link", "host-secret.txt"]))
        // A symlink itself may go (it is an entry of the folder), never its target.
        #expect(folder.removeFile(["direct"]))
        for path in ["/mnt/data/link/host-secret.txt", "/mnt/data/../outside/host-secret.txt"] {
            if let components = SandboxFolder.components(ofSandboxPath: path) { folder.removeFile(components) }
        }
        #expect(FileManager.default.fileExists(atPath: victim))
        #expect(FileManager.default.fileExists(atPath: outside))
    }

    @Test func sessionQuotaEnforcementNeverDeletesOutside() async throws {
        let (session, outside, victim) = try layout()
        try FileManager.default.createSymbolicLink(atPath: session + "/link", withDestinationPath: outside)
        try Data(repeating: 2, count: 3 * 1024 * 1024).write(to: URL(fileURLWithPath: session + "/big.bin"))
        var limits = Sandbox.Limits()
        limits.diskQuota = 1024 * 1024
        let sandbox = try Sandbox(dataDirectory: TestSupport.temporaryDirectory(), limits: limits)
        let result = KernelResult(id: 1, token: "t", status: "ok", stdout: "", stderr: "", error: nil,
                                  files: [.init(path: "/mnt/data/link/host-secret.txt", size: 4096),
                                          .init(path: "/mnt/data/../outside/host-secret.txt", size: 4096),
                                          .init(path: "/mnt/data/big.bin", size: 3 * 1024 * 1024)],
                                  images: nil, restarted: nil, exit: nil)
        let trimmed = try await CodeSession(directory: session, sandbox: sandbox).enforceQuota(result)
        #expect(trimmed.status == "error")
        #expect(trimmed.error?.contains("1 MiB quota") == true)
        #expect(!FileManager.default.fileExists(atPath: session + "/big.bin"))
        #expect(FileManager.default.fileExists(atPath: victim))
    }

    @Test func readRefusesSymlinksFifosAndOversizedFiles() throws {
        let (session, _, victim) = try layout()
        try FileManager.default.createSymbolicLink(atPath: session + "/secret", withDestinationPath: victim)
        #expect(mkfifo(session + "/fifo", 0o644) == 0)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: session + "/ok.txt"))
        let folder = try SandboxFolder(path: session)
        #expect(folder.readRegularFile(["secret"], maxBytes: 1 << 20) == nil)
        #expect(folder.readRegularFile(["fifo"], maxBytes: 1 << 20) == nil)   // and does not block
        #expect(folder.readRegularFile(["ok.txt"], maxBytes: 1 << 20) == Array("hello".utf8))
        #expect(folder.readRegularFile(["ok.txt"], maxBytes: 4) == nil)
    }

    @Test func stagingNeverWritesThroughAPlantedSymlink() throws {
        let (session, _, victim) = try layout()
        try FileManager.default.createSymbolicLink(atPath: session + "/data.csv", withDestinationPath: victim)
        let source = TestSupport.temporaryDirectory() + "/upload"
        try Data("a,b\n1,2\n".utf8).write(to: URL(fileURLWithPath: source))
        let folder = try SandboxFolder(path: session)
        #expect(try folder.stage(name: "data.csv", from: source, owner: getuid()) == false)
        #expect(try Data(contentsOf: URL(fileURLWithPath: victim)).count == 4096)
        #expect(try folder.stage(name: "fresh.csv", from: source, owner: getuid()) == true)
        var info = stat()
        #expect(lstat(session + "/fresh.csv", &info) == 0 && info.st_mode & 0o777 == 0o644)
        #expect(throws: SandboxFolderError.self) { try folder.stage(name: "../x.csv", from: source, owner: getuid()) }
    }

    @Test func theSessionFolderItselfMustNotBeASymlink() throws {
        let (session, outside, _) = try layout()
        let link = session + "-link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        #expect(throws: SandboxFolderError.self) { try SandboxFolder(path: link) }
    }

    @Test func tokensAreFreshAndLong() {
        let tokens = (0..<100).map { _ in CodeSession.makeToken() }
        #expect(Set(tokens).count == 100)
        #expect(tokens.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }

    /// A data dir uid 65534 cannot reach (a 0700 parent, as pytest's tmp_path has) gets a sandbox
    /// folder of its own under /tmp, which goes when asked; one under the data dir stays.
    @Test func aSandboxFolderUnderTmpIsRemovedAndOneUnderTheDataDirStays() throws {
        let closed = TestSupport.temporaryDirectory()
        chmod(closed, 0o700)
        let fallback = try Sandbox(dataDirectory: closed + "/data")
        #expect(fallback.temporaryRoot && fallback.root.hasPrefix(Sandbox.temporaryParent + "/assistants-sandbox-"))
        try Data("left over".utf8).write(to: URL(fileURLWithPath: fallback.sessionsPath + "/note.txt"))
        #expect(FileManager.default.fileExists(atPath: fallback.kernelPath))
        #expect(fallback.removeTemporaryRoot())
        #expect(!FileManager.default.fileExists(atPath: fallback.root))

        let open = TestSupport.temporaryDirectory()
        chmod(open, 0o755)
        let inside = try Sandbox(dataDirectory: open + "/data")
        #expect(!inside.temporaryRoot && inside.root == open + "/data/sandbox")
        #expect(inside.removeTemporaryRoot())
        #expect(FileManager.default.fileExists(atPath: inside.kernelPath))
    }

    /// The service removes its /tmp sandbox folder when it stops (each server start made one, and
    /// the suites' servers left over a hundred behind per run).
    @Test func theServiceRemovesItsTmpSandboxFolderWhenItStops() async throws {
        let closed = TestSupport.temporaryDirectory()
        chmod(closed, 0o700)
        let service = CodeInterpreterService(dataDirectory: closed + "/data", settings: .init(), logger: TestSupport.logger)
        let sandbox = try #require(service.sandbox, "no sandbox here: \(service.unavailableReason ?? "")")
        #expect(sandbox.temporaryRoot && FileManager.default.fileExists(atPath: sandbox.root))
        let running = Task { try await service.run() }
        try await Task.sleep(for: .milliseconds(50))
        running.cancel()
        try await running.value
        #expect(!FileManager.default.fileExists(atPath: sandbox.root))
    }

    /// A server killed before its shutdown (SIGKILL, the OOM killer) left its /tmp sandbox folder
    /// and its sessions' files: the next start removes what no running server's lock holds, and
    /// only that.
    @Test func aStartRemovesWhatKilledServersLeftAndNothingARunningServerHolds() throws {
        let manager = FileManager.default
        let tag = Sandbox.temporaryParent + "/" + Sandbox.temporaryPrefix + "test-" + UUID().uuidString.prefix(8)
        let (dead, held, unlocked) = (tag + "-dead", tag + "-held", tag + "-new")
        defer { for path in [dead, held, unlocked] { try? manager.removeItem(atPath: path) } }
        for path in [dead, held, unlocked] {
            try manager.createDirectory(atPath: path + "/sessions/default_thread_1", withIntermediateDirectories: true)
            try Data("user data".utf8).write(to: URL(fileURLWithPath: path + "/sessions/default_thread_1/private.txt"))
        }
        // `dead`: its owner is gone, the lock file stays. `held`: a running server holds it (an
        // open file description of its own, as another process would). `unlocked`: being made.
        do {
            // Released at the end of this scope: its server has died.
            let lock = try #require(SandboxOwnerLock.take(path: dead))
            withExtendedLifetime(lock) {}
        }
        let running = try #require(SandboxOwnerLock.take(path: held))
        #expect(SandboxOwnerLock.take(path: held) == nil, "a held lock is taken twice")
        #expect(manager.fileExists(atPath: dead + "/" + SandboxOwnerLock.fileName))

        let dataDirectory = TestSupport.temporaryDirectory()
        let left = dataDirectory + "/sandbox/sessions/default_thread_2"
        try manager.createDirectory(atPath: left, withIntermediateDirectories: true)
        try Data("user data".utf8).write(to: URL(fileURLWithPath: left + "/private.txt"))
        try withExtendedLifetime(running) {
            let sandbox = try Sandbox(dataDirectory: dataDirectory)
            #expect(!manager.fileExists(atPath: dead))
            #expect(manager.fileExists(atPath: held + "/sessions/default_thread_1/private.txt"))
            #expect(manager.fileExists(atPath: unlocked + "/sessions/default_thread_1/private.txt"))
            // Under the data dir: the sessions' folders go, the sandbox folder stays.
            #expect(sandbox.ownerLock != nil)
            #expect(sandbox.leftoversRemoved.contains(dataDirectory + "/sandbox/sessions/default_thread_2"))
            #expect(!manager.fileExists(atPath: left))
            #expect(manager.fileExists(atPath: sandbox.kernelPath))

            // A second server on the same data dir while the first runs sweeps none of its sessions.
            let live = dataDirectory + "/sandbox/sessions/default_thread_3"
            try manager.createDirectory(atPath: live, withIntermediateDirectories: true)
            let second = try Sandbox(dataDirectory: dataDirectory)
            #expect(second.ownerLock == nil)
            #expect(manager.fileExists(atPath: live))
            withExtendedLifetime(sandbox) {}
        }
    }

    /// Starts that race for a fresh folder's lock: exactly one holds it, and no lock file but
    /// `.owner` is left.
    @Test func onlyOneOfConcurrentStartsTakesTheLock() throws {
        for _ in 0..<20 {
            let folder = TestSupport.temporaryDirectory()
            let held = NIOLockedValueBox([SandboxOwnerLock]())
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                if let lock = SandboxOwnerLock.take(path: folder) { held.withLockedValue { $0.append(lock) } }
            }
            #expect(held.withLockedValue { $0.count } == 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == [SandboxOwnerLock.fileName])
        }
    }

    @Test func fallbackLimitsStayWithinTheBudget() {
        var limits = Sandbox.Limits()
        limits.memory = 1024 * 1024 * 1024
        let fallback = limits.enforcing(.rlimit)
        let userTasks = fallback.processes - Sandbox.Limits.fixedTasks
        #expect(userTasks >= 1)
        #expect(fallback.addressSpace >= Sandbox.Limits.minimumAddressSpace)
        #expect(fallback.addressSpace * userTasks <= limits.memory)
        let cgroup = limits.enforcing(.cgroupV1)
        #expect(cgroup.processes == 64 && cgroup.addressSpace == limits.memory)
    }

    @Test func launchMovesTheSandboxIntoItsCgroupFirst() throws {
        let sandbox = try Sandbox(dataDirectory: TestSupport.temporaryDirectory())
        let cgroup = SandboxCgroup(mode: .cgroupV1, directories: ["/sys/fs/cgroup/memory/x/s1", "/sys/fs/cgroup/pids/x/s1"])
        let launch = sandbox.launch(sessionDirectory: "/tmp/session", cgroup: cgroup)
        #expect(launch.executable == "/bin/sh")
        #expect(launch.arguments[1] == "echo $$ > '/sys/fs/cgroup/memory/x/s1/cgroup.procs' && echo $$ > '/sys/fs/cgroup/pids/x/s1/cgroup.procs' && exec \"$@\"")
        #expect(Array(launch.arguments[2...4]) == ["sh", "/usr/bin/env", "-i"])
        #expect(sandbox.launch(sessionDirectory: "/tmp/session", cgroup: nil).executable == "/usr/bin/env")
    }
}
