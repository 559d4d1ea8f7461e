import Foundation

/// How a code_interpreter sandbox is started: bubblewrap with new namespaces (no network),
/// read-only system files, the session folder at /mnt/data, an empty environment, uid 65534
/// without capabilities, and rlimits (sandbox/bwrap-command.md explains each argument).
public struct Sandbox: Sendable {
    /// Limits of one sandbox.
    public struct Limits: Sendable {
        /// The memory budget of one session, across all its processes (`ASSISTANTS_CODE_MEMORY_MB`).
        public var memory = 1024 * 1024 * 1024
        /// The most /mnt/data may hold (`ASSISTANTS_CODE_DISK_MB`); past it an execution's files are removed.
        public var diskQuota = 1024 * 1024 * 1024
        /// RLIMIT_AS of each process (see `enforcing(_:)`).
        public var addressSpace = 1024 * 1024 * 1024
        public var cpuSoft = 60
        public var cpuHard = 3600
        public var processes = 64
        public var fileSize = 100 * 1024 * 1024
        public var openFiles = 256
        public var tmpSize = 256 * 1024 * 1024
        public var shmSize = 16 * 1024 * 1024
        /// Wall-clock limit of one execution; the session is killed and restarted past it (+ 2 s grace).
        public var timeout: Duration = .seconds(30)

        public init() {}

        /// The least RLIMIT_AS with which python3 + numpy + matplotlib import and plot (VmPeak
        /// measured at 255 MiB on Debian 12's packages).
        public static let minimumAddressSpace = 320 * 1024 * 1024
        /// Tasks of the sandbox that are not user code: bwrap's init and the kernel's supervisor.
        static let fixedTasks = 2

        /// The per-process limits for a memory mode. With a cgroup the cgroup holds the whole
        /// budget and RLIMIT_AS (the budget, at least the minimum) only turns one huge allocation
        /// into a MemoryError. In the rlimit fallback RLIMIT_AS x the user-code tasks RLIMIT_NPROC
        /// allows stays within the budget (bwrap's init and the supervisor run fixed code).
        public func enforcing(_ mode: SandboxMemoryMode) -> Limits {
            var limits = self
            switch mode {
            case .cgroupV1, .cgroupV2:
                limits.addressSpace = max(memory, Self.minimumAddressSpace)
            case .rlimit:
                // Half the budget each: the worker and one more process or thread (numpy work
                // needs room beyond the ~255 MiB its imports take; a third left only ~80 MiB).
                let perProcess = max(Self.minimumAddressSpace, memory / 2)
                let userTasks = max(1, memory / perProcess)
                limits.addressSpace = perProcess
                limits.processes = Self.fixedTasks + userTasks
            }
            return limits
        }

        /// The pids.max of a sandbox's cgroup: RLIMIT_NPROC plus bwrap's own processes.
        var cgroupTasks: Int { processes + 4 }
    }

    public static let uid = 65534

    /// Where the kernel, passwd/group files and session folders live (under the data dir).
    public let root: String
    public let limits: Limits
    /// Where sessions get their cgroups; nil: none (the limits are used as given).
    let cgroups: SandboxCgroups?
    /// Whether `root` is a folder of its own under /tmp (the data dir was out of uid 65534's
    /// reach), which the server removes when it stops.
    let temporaryRoot: Bool
    /// The host's configuration files a session sees read-only, those of `systemFiles` that
    /// exist here (looked up once, at start-up, not at each session's start).
    let systemBinds: [String]
    /// This server's hold on `root` (see `SandboxOwnerLock`); nil when another running server
    /// holds it (two servers on one data dir), and then the start-up sweep of `sessions` is skipped.
    let ownerLock: SandboxOwnerLock?
    /// What start-up removed that killed servers had left: session folders under `root`, and
    /// sandbox folders of their own under /tmp.
    let leftoversRemoved: [String]

    static let systemFiles = ["/etc/alternatives", "/etc/python3", "/etc/python3.11", "/etc/matplotlibrc", "/etc/fonts",
                              "/etc/ld.so.cache", "/etc/localtime", "/var/cache/fontconfig"]

    var kernelPath: String { root + "/kernel.py" }
    var passwdPath: String { root + "/passwd" }
    var groupPath: String { root + "/group" }
    var sessionsPath: String { root + "/sessions" }

    /// Lays out the sandbox folder: the kernel and the one-user passwd/group, readable by uid 65534.
    /// It lives under the data dir, unless uid 65534 cannot reach that (a parent folder without
    /// `o+x`): then in a fresh folder under /tmp.
    init(dataDirectory: String, limits: Limits = Limits(), cgroups: SandboxCgroups? = nil) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let absolute = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        // Servers killed before their shutdown left their folders under /tmp, sessions' files in them.
        var removed = SandboxOwnerLock.sweep(in: Self.temporaryParent, prefix: Self.temporaryPrefix)
            .map { Self.temporaryParent + "/" + $0 }
        if Self.traversable(parentsOf: absolute) {
            root = (absolute as NSString).appendingPathComponent("sandbox")
            temporaryRoot = false
        } else {
            var template = Array((Self.temporaryParent + "/" + Self.temporaryPrefix + "XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else { throw ConfigurationError("cannot make a sandbox folder under \(Self.temporaryParent)") }
            root = String(cString: made)
            temporaryRoot = true
        }
        self.limits = limits
        self.cgroups = cgroups
        systemBinds = Self.systemFiles.filter { manager.fileExists(atPath: $0) }
        let sessions = root + "/sessions"  // `sessionsPath`, before every property is set
        try manager.createDirectory(atPath: sessions, withIntermediateDirectories: true)
        let lock = SandboxOwnerLock.take(path: root)
        if temporaryRoot && lock == nil { throw ConfigurationError("cannot lock the sandbox folder \(root)") }
        // Holding the lock, no running server has a session here: any folder in `sessions` was
        // left by a server killed mid-session (a thread's next session would otherwise find its files).
        if lock != nil {
            removed += SandboxFolder.names(in: sessions).filter { SandboxFolder.removeTree(named: $0, in: sessions) }
                .map { sessions + "/" + $0 }
        }
        ownerLock = lock
        leftoversRemoved = removed
        try SandboxKernelSource.text.write(toFile: kernelPath, atomically: true, encoding: .utf8)  // blocking-ok: start-up
        try "nobody:x:65534:65534:sandbox:/mnt/data:/usr/sbin/nologin\n".write(toFile: passwdPath, atomically: true, encoding: .utf8)  // blocking-ok: start-up
        try "nogroup:x:65534:\n".write(toFile: groupPath, atomically: true, encoding: .utf8)  // blocking-ok: start-up
        // bwrap runs as uid 65534 and must reach every bind source.
        for path in [root, sessionsPath] { chmod(path, 0o711) }
        if root.hasPrefix(absolute) { chmod(absolute, 0o711) }
        for path in [kernelPath, passwdPath, groupPath] { chmod(path, 0o444) }
    }

    /// Where a sandbox whose data dir uid 65534 cannot reach makes its own folder, and how its name starts.
    static let temporaryParent = "/tmp"
    static let temporaryPrefix = "assistants-sandbox-"

    /// Removes the folder under /tmp that this sandbox made for itself, with what is left in
    /// it, once no session runs (at shutdown); a sandbox under the data dir stays, as the data
    /// dir does. Blocks: call it inside `Offload.run`. Returns whether nothing is left.
    @discardableResult
    func removeTemporaryRoot() -> Bool {
        guard temporaryRoot else { return true }
        return SandboxFolder.removeTree(named: (root as NSString).lastPathComponent, in: Self.temporaryParent)
    }

    /// Whether every folder above `path` lets others through (`o+x`), as bwrap running as uid 65534 needs.
    static func traversable(parentsOf path: String) -> Bool {
        var current = (path as NSString).deletingLastPathComponent
        while !current.isEmpty && current != "/" {
            var info = stat()
            guard stat(current, &info) == 0, info.st_mode & 0o001 != 0 else { return false }
            current = (current as NSString).deletingLastPathComponent
        }
        return true
    }

    /// Whether sandboxes can be made here: bubblewrap installed and user namespaces allowed.
    /// It runs once, at start-up, in the synchronous initializer of `CodeInterpreterService`
    /// before the server listens: swift-subprocess has only async calls, so this one short child
    /// keeps Foundation's `Process` (every child of a request or run uses swift-subprocess).
    public static func probe() -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            return "bubblewrap (/usr/bin/bwrap) is not installed: apt-get install bubblewrap"
        }
        let process = Process()  // blocking-ok: start-up (see above)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let asUser = getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
        process.arguments = ["-i"] + asUser + ["/usr/bin/bwrap", "--unshare-user", "--unshare-net", "--ro-bind", "/", "/", "/bin/true"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()  // blocking-ok: start-up
        } catch {
            return "bubblewrap could not be started: \(error)"
        }
        return process.terminationStatus == 0 ? nil : "bubblewrap cannot create user namespaces on this host"
    }

    /// The program and arguments that start one session: with a cgroup, a root shell first moves
    /// itself into the cgroup, so everything the sandbox ever runs is inside it before setpriv
    /// drops to uid 65534 (and then cannot leave it), and execs the command of `arguments`.
    func launch(sessionDirectory: String, cgroup: SandboxCgroup?) -> (executable: String, arguments: [String]) {
        guard let cgroup else { return ("/usr/bin/env", arguments(sessionDirectory: sessionDirectory)) }
        let moves = cgroup.procsFiles.map { "echo $$ > " + Self.shellQuoted($0) }
        let script = (moves + ["exec \"$@\""]).joined(separator: " && ")
        return ("/bin/sh", ["-c", script, "sh", "/usr/bin/env"] + arguments(sessionDirectory: sessionDirectory))
    }

    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The command of one session (sandbox/bwrap-command.md).
    func arguments(sessionDirectory: String) -> [String] {
        var arguments = ["-i"]
        if getuid() == 0 {
            // As root, bwrap would map the sandbox user to host root, which RLIMIT_NPROC does not bound.
            arguments += ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
        }
        arguments += [
            "/usr/bin/bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL", "--new-session", "--die-with-parent",
            "--hostname", "sandbox", "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/mnt/data", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLBACKEND", "Agg", "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
            "--setenv", "OPENBLAS_NUM_THREADS", "1", "--setenv", "OMP_NUM_THREADS", "1",
        ]
        for name in ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"] {
            if let value = ProcessInfo.processInfo.environment[name] { arguments += ["--setenv", name, value] }
        }
        arguments += [
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        ]
        for path in systemBinds {
            arguments += ["--ro-bind", path, path]
        }
        arguments += [
            "--ro-bind", passwdPath, "/etc/passwd", "--ro-bind", groupPath, "/etc/group",
            "--proc", "/proc", "--dev", "/dev",
            "--size", String(limits.shmSize), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
            "--size", String(limits.tmpSize), "--tmpfs", "/tmp",
            "--bind", sessionDirectory, "/mnt/data", "--ro-bind", kernelPath, "/opt/kernel.py",
            "--remount-ro", "/", "--chdir", "/mnt/data", "--",
            "/usr/bin/prlimit", "--as=\(limits.addressSpace)", "--cpu=\(limits.cpuSoft):\(limits.cpuHard)",
            "--nproc=\(limits.processes)", "--fsize=\(limits.fileSize)", "--nofile=\(limits.openFiles)", "--core=0", "--",
            "/usr/bin/python3", "-I", "-B", "/opt/kernel.py",
        ]
        return arguments
    }
}
