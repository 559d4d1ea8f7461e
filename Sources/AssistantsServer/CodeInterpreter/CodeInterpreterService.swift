import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The sandboxed Python sessions of code_interpreter, one per thread: made on first use,
/// closed after an idle timeout, bounded in number, all stopped at shutdown. A session's folder
/// (its /mnt/data) is removed when the session ends, and a sandbox folder of its own under /tmp
/// at shutdown.
public final class CodeInterpreterService: Service, Sendable {
    public struct Settings: Sendable {
        public var idleTimeout: Duration = .seconds(20 * 60)
        public var maxSessions = 16
        public var limits = Sandbox.Limits()

        public init() {}
    }

    let sandbox: Sandbox?
    /// Why code cannot run here (no bubblewrap or no user namespaces), if it cannot.
    let unavailableReason: String?
    let settings: Settings
    let logger: Logger
    private let sessions = NIOLockedValueBox([SessionOwner: CodeSession]())

    /// The thread a session belongs to.
    struct SessionOwner: Hashable, Sendable {
        var project: String
        var threadID: String

        /// The session folder's name: `project_thread`, reduced to letters, digits and `_`.
        var folderName: String {
            (project + "_" + threadID).map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? String($0) : "_" }.joined()
        }
    }

    init(dataDirectory: String, settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        var reason = Sandbox.probe()
        var sandbox: Sandbox?
        if reason == nil {
            let cgroups = SandboxCgroups.detect()
            let limits = settings.limits.enforcing(cgroups.mode)
            do {
                let made = try Sandbox(dataDirectory: dataDirectory, limits: limits, cgroups: cgroups)
                if !made.leftoversRemoved.isEmpty {
                    logger.notice("removed \(made.leftoversRemoved.count) sandbox folder(s) that killed servers had left: \(made.leftoversRemoved.joined(separator: ", "))")
                }
                if made.ownerLock == nil {
                    logger.warning("another running server holds the sandbox folder \(made.root) (two servers on one data dir?); its sessions may collide with this one's")
                }
                sandbox = made
            } catch {
                cgroups.removeParents()
                reason = "the sandbox folder could not be prepared: \(error)"
            }
            let mib = { (bytes: Int) in "\(bytes / (1024 * 1024)) MiB" }
            switch cgroups.mode {
            case .cgroupV1, .cgroupV2:
                logger.info("code_interpreter memory limits: \(cgroups.mode.rawValue), \(mib(limits.memory)) per session across all its processes (no swap), at most \(limits.cgroupTasks) tasks; \(mib(limits.addressSpace)) address space per process; /mnt/data quota \(mib(limits.diskQuota)); cgroups under \(cgroups.parents.joined(separator: ", "))")
            case .rlimit:
                logger.warning("code_interpreter memory limits: \(cgroups.mode.rawValue) (\(cgroups.unavailableReason ?? "no cgroup")): \(mib(limits.addressSpace)) address space per process x \(limits.processes - Sandbox.Limits.fixedTasks) user processes/threads (RLIMIT_NPROC \(limits.processes)) within \(mib(limits.memory)) per session; /tmp and /dev/shm tmpfs and kernel memory are not bounded by it; /mnt/data quota \(mib(limits.diskQuota))")
            }
        }
        self.sandbox = sandbox
        self.unavailableReason = reason
        if let reason {
            logger.warning("code_interpreter is unavailable: \(reason); runs that use it will be refused")
        }
    }

    /// The session of a thread, made on first use.
    func session(project: String, threadID: String) async throws -> CodeSession {
        let key = SessionOwner(project: project, threadID: threadID)
        guard let sandbox else {
            throw DomainError.notImplemented("code_interpreter is unavailable on this server: \(unavailableReason ?? "no sandbox").")
        }
        if let existing = sessions.withLockedValue({ $0[key] }) { return existing }
        let directory = sandbox.sessionsPath + "/" + key.folderName
        try await Offload.run {
            // The session folder is made by the server (root) under its own 0711 folder; the
            // sandbox only ever sees it from inside, as /mnt/data (a mount point it cannot replace).
            if mkdir(directory, 0o700) != 0 && errno != EEXIST {
                throw SandboxFolderError("cannot make the session folder (errno \(errno))")
            }
            let folder = try SandboxFolder(path: directory)
            fchown(folder.descriptor, uid_t(Sandbox.uid), gid_t(Sandbox.uid))
            fchmod(folder.descriptor, 0o700)
        }
        let (session, evicted) = sessions.withLockedValue { table -> (CodeSession, CodeSession?) in
            if let existing = table[key] { return (existing, nil) }
            var evicted: CodeSession?
            if table.count >= settings.maxSessions,
               let oldest = table.min(by: { $0.value.lastUsed.withLockedValue { $0 } < $1.value.lastUsed.withLockedValue { $0 } }) {
                evicted = table.removeValue(forKey: oldest.key)
            }
            let session = CodeSession(directory: directory, sandbox: sandbox)
            table[key] = session
            return (session, evicted)
        }
        if let evicted { await end(evicted) }
        return session
    }

    /// The threads that have a live session on this server.
    func sessionOwners() -> [SessionOwner] {
        sessions.withLockedValue { Array($0.keys) }
    }

    /// Ends a thread's session, if this server holds one, and removes its folder.
    func closeSession(project: String, threadID: String) async {
        if let session = sessions.withLockedValue({ $0.removeValue(forKey: SessionOwner(project: project, threadID: threadID)) }) {
            await end(session)
        }
    }

    /// Stops a session's sandbox and removes its folder with everything in it.
    private func end(_ session: CodeSession) async {
        await session.stop()
        guard let sessionsPath = sandbox?.sessionsPath else { return }
        let name = (session.directory as NSString).lastPathComponent
        let removed = (try? await Offload.run { SandboxFolder.removeTree(named: name, in: sessionsPath) }) ?? false
        if !removed { logger.warning("the code_interpreter session folder \(name) could not be removed entirely") }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(30))
                await self.closeIdle()
            }
        }
        // In a task of its own: were this one cancelled rather than shut down gracefully, Offload
        // would refuse the clean-up's work and leave the sessions' folders and cgroups behind.
        await Task { await self.shutDown() }.value
    }

    /// Ends every session, then removes the sandbox's cgroups and its own folder under /tmp.
    private func shutDown() async {
        for session in sessions.withLockedValue({ table in defer { table = [:] }; return Array(table.values) }) {
            await end(session)
        }
        if let cgroups = sandbox?.cgroups {
            try? await Offload.run { cgroups.removeParents() }
        }
        if let sandbox {
            // A start that made one under /tmp left it behind: they piled up, one per start.
            let removed = (try? await Offload.run { sandbox.removeTemporaryRoot() }) ?? false
            if !removed { logger.warning("the sandbox folder \(sandbox.root) could not be removed entirely") }
        }
    }

    func closeIdle() async {
        let now = ContinuousClock.now
        let idle = sessions.withLockedValue { table -> [CodeSession] in
            let keys = table.filter { now - $0.value.lastUsed.withLockedValue { $0 } > settings.idleTimeout }.map(\.key)
            return keys.compactMap { table.removeValue(forKey: $0) }
        }
        for session in idle { await end(session) }
    }
}
