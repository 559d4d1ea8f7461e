import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// How the memory budget of a session is enforced on this host, detected once at start.
public enum SandboxMemoryMode: String, Sendable {
    /// cgroup v1: a memory cgroup (`memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`) and a pids cgroup per sandbox.
    case cgroupV1 = "cgroup v1"
    /// cgroup v2: one cgroup per sandbox with `memory.max`, `memory.swap.max` 0 and `pids.max`.
    case cgroupV2 = "cgroup v2"
    /// No cgroup could be made: per-process RLIMIT_AS x RLIMIT_NPROC within the budget.
    case rlimit = "rlimit fallback"
}

/// Where this server makes its sandboxes' cgroups (a parent per controller hierarchy, named after
/// the server's pid), or nothing in the rlimit fallback.
struct SandboxCgroups: Sendable {
    let mode: SandboxMemoryMode
    /// v1: the memory parent, then the pids parent; v2: the one parent.
    let parents: [String]
    /// Why no cgroup is used, in the fallback.
    let unavailableReason: String?
    private static let counter = NIOLockedValueBox(0)

    static let prefix = "assistants-sandbox-"

    /// No cgroups: the rlimit fallback.
    static func fallback(_ reason: String) -> SandboxCgroups {
        SandboxCgroups(mode: .rlimit, parents: [], unavailableReason: reason)
    }

    /// Finds a writable cgroup hierarchy (v2 first, then v1 memory + pids) and makes this server's
    /// parent cgroup(s), after removing those of servers that are gone; else the fallback.
    static func detect(root: String = "/sys/fs/cgroup") -> SandboxCgroups {
        guard getuid() == 0 else { return fallback("the server does not run as root") }
        let name = prefix + String(getpid())
        if FileManager.default.fileExists(atPath: root + "/cgroup.controllers") {
            let controllers = (try? String(contentsOfFile: root + "/cgroup.controllers", encoding: .utf8)) ?? ""  // blocking-ok: start-up
            let names = controllers.split(whereSeparator: \.isWhitespace)
            guard names.contains("memory"), names.contains("pids") else {
                return fallback("cgroup v2 without the memory and pids controllers")
            }
            removeStale(in: root)
            let parent = root + "/" + name
            guard writeControl(root + "/cgroup.subtree_control", "+memory +pids"),
                  makeDirectory(parent),
                  writeControl(parent + "/cgroup.subtree_control", "+memory +pids") else {
                rmdir(parent)
                return fallback("cannot make a cgroup v2 with memory and pids controllers under \(root) (errno \(errno))")
            }
            let cgroups = SandboxCgroups(mode: .cgroupV2, parents: [parent], unavailableReason: nil)
            return cgroups.probe() ? cgroups : fallback("cannot set memory.max in a cgroup v2 under \(parent)")
        }
        let memoryRoot = root + "/memory", pidsRoot = root + "/pids"
        guard FileManager.default.fileExists(atPath: memoryRoot + "/memory.limit_in_bytes"),
              FileManager.default.fileExists(atPath: pidsRoot + "/cgroup.procs") else {
            return fallback("no cgroup v2 and no cgroup v1 memory and pids hierarchies under \(root)")
        }
        // Under the server's own cgroups, so whatever bounds the server also bounds its sandboxes.
        let memoryHome = memoryRoot + ownCgroup(controller: "memory", mount: memoryRoot)
        let pidsHome = pidsRoot + ownCgroup(controller: "pids", mount: pidsRoot)
        removeStale(in: memoryHome)
        removeStale(in: pidsHome)
        let parents = [memoryHome + "/" + name, pidsHome + "/" + name]
        guard parents.allSatisfy(makeDirectory) else {
            parents.forEach { rmdir($0) }
            return fallback("cannot make cgroups under \(memoryHome) and \(pidsHome) (errno \(errno))")
        }
        let cgroups = SandboxCgroups(mode: .cgroupV1, parents: parents, unavailableReason: nil)
        return cgroups.probe() ? cgroups : fallback("cannot set memory.limit_in_bytes in a cgroup v1 under \(parents[0])")
    }

    /// The server's own cgroup path in one v1 hierarchy (from /proc/self/cgroup), if it lies under the mount.
    private static func ownCgroup(controller: String, mount: String) -> String {
        let text = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""  // blocking-ok: start-up
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[1].split(separator: ",").contains(Substring(controller)) else { continue }
            let path = String(fields[2])
            if path != "/", !path.contains(".."), FileManager.default.fileExists(atPath: mount + path) { return path }
        }
        return ""
    }

    /// Removes the parents left by servers that are no longer running (and their sandboxes' cgroups).
    private static func removeStale(in directory: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where entry.hasPrefix(prefix) {  // blocking-ok: start-up
            guard let pid = Int32(entry.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let parent = directory + "/" + entry
            for child in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where child.hasPrefix("s") {  // blocking-ok: start-up
                SandboxCgroup.empty(parent + "/" + child)
            }
            rmdir(parent)
        }
    }

    /// Whether a child cgroup with a memory limit can be made here.
    private func probe() -> Bool {
        guard let cgroup = try? create(memoryBytes: 64 * 1024 * 1024, pidsMax: 8) else { return false }
        cgroup.remove()
        return true
    }

    /// A fresh cgroup for one sandbox, limited to `memoryBytes` (no swap) and `pidsMax` tasks; nil in the fallback.
    func create(memoryBytes: Int, pidsMax: Int) throws -> SandboxCgroup? {
        guard mode != .rlimit else { return nil }
        let number = Self.counter.withLockedValue { value -> Int in
            value += 1
            return value
        }
        let directories = parents.map { $0 + "/s\(number)" }
        let cgroup = SandboxCgroup(mode: mode, directories: directories)
        for directory in directories where !Self.makeDirectory(directory) {
            cgroup.remove()
            throw SandboxFolderError("cannot make the cgroup \(directory) (errno \(errno))")
        }
        var ok: Bool
        switch mode {
        case .cgroupV1:
            let memory = directories[0], pids = directories[1]
            ok = Self.writeControl(memory + "/memory.limit_in_bytes", String(memoryBytes))
            if ok, FileManager.default.fileExists(atPath: memory + "/memory.memsw.limit_in_bytes") {
                ok = Self.writeControl(memory + "/memory.memsw.limit_in_bytes", String(memoryBytes))
            }
            ok = ok && Self.writeControl(pids + "/pids.max", String(pidsMax))
        case .cgroupV2:
            let directory = directories[0]
            ok = Self.writeControl(directory + "/memory.max", String(memoryBytes))
            if ok, FileManager.default.fileExists(atPath: directory + "/memory.swap.max") {
                ok = Self.writeControl(directory + "/memory.swap.max", "0")
            }
            ok = ok && Self.writeControl(directory + "/pids.max", String(pidsMax))
        case .rlimit:
            ok = false
        }
        guard ok else {
            cgroup.remove()
            throw SandboxFolderError("cannot set the limits of the cgroup \(directories[0]) (errno \(errno))")
        }
        return cgroup
    }

    /// Removes this server's parent cgroups (at shutdown, once every sandbox has stopped).
    func removeParents() {
        for parent in parents {
            for child in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where child.hasPrefix("s") {  // blocking-ok: in Offload
                SandboxCgroup.empty(parent + "/" + child)
            }
            rmdir(parent)
        }
    }

    static func makeDirectory(_ path: String) -> Bool {
        mkdir(path, 0o755) == 0 || errno == EEXIST
    }

    /// Writes a cgroup control file (one write, as the kernel wants it).
    static func writeControl(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw in raw.baseAddress.map { write(fd, $0, raw.count) } ?? -1 } == bytes.count
    }
}

/// The cgroup(s) of one running sandbox: the sandbox is moved in before anything runs inside it,
/// its OOM kills are counted, and it is removed (its tasks killed first) when the sandbox stops.
struct SandboxCgroup: Sendable {
    let mode: SandboxMemoryMode
    let directories: [String]

    /// The `cgroup.procs` files the sandbox's first process writes its pid to.
    var procsFiles: [String] { directories.map { $0 + "/cgroup.procs" } }

    /// How many processes the kernel killed for going over the memory limit so far.
    func oomKills() -> Int {
        guard let memory = directories.first else { return 0 }
        let file = mode == .cgroupV2 ? memory + "/memory.events" : memory + "/memory.oom_control"
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""  // blocking-ok: in Offload
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == "oom_kill", let value = Int(fields[1]) { return value }
        }
        return 0
    }

    /// Kills whatever is left in the cgroup(s) and removes them.
    func remove() {
        for directory in directories.reversed() { Self.empty(directory) }
    }

    /// Kills the tasks of one cgroup until it is empty, then removes it (a few seconds at most).
    static func empty(_ directory: String) {
        for _ in 0..<250 {
            if rmdir(directory) == 0 || errno == ENOENT { return }
            let procs = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? ""  // blocking-ok: in Offload
            for pid in procs.split(separator: "\n").compactMap({ Int32($0) }) where pid > 1 {
                kill(pid, SIGKILL)
            }
            usleep(20_000)  // blocking-ok: in Offload
        }
    }
}
