import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The lock a running server holds on its sandbox folder (`.owner` in it, `flock`ed for the
/// process's lifetime): the kernel drops it when the process dies, however it dies. A folder
/// whose lock can be taken belongs to no running server, so what is in it was left by one that
/// was killed (SIGKILL, the OOM killer, a crash) before it could clean up: its sessions' files,
/// user data among them, and for a folder of its own under /tmp the folder itself. Start-up
/// removes those (`sweep`). All of it blocks: start-up and shutdown only.
final class SandboxOwnerLock: Sendable {
    static let fileName = ".owner"
    private let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Takes the lock of the folder `directory` (open by descriptor), making the lock file if
    /// need be; nil when a running server holds it. A new file is made under a name of its own,
    /// locked, then linked as `.owner` (which fails if another start made one meanwhile), so that
    /// no one ever finds an `.owner` not yet locked, or has theirs replaced.
    static func take(in directory: Int32) -> SandboxOwnerLock? {
        for _ in 0..<2 {
            let existing = openat(directory, fileName, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
            if existing >= 0 {
                guard flock(existing, LOCK_EX | LOCK_NB) == 0 else {
                    close(existing)
                    return nil
                }
                return SandboxOwnerLock(descriptor: existing)
            }
            let staging = fileName + "." + UUID().uuidString
            let made = openat(directory, staging, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard made >= 0 else { return nil }
            let linked = flock(made, LOCK_EX | LOCK_NB) == 0 && linkat(directory, staging, directory, fileName, 0) == 0
            let raced = !linked && errno == EEXIST
            unlinkat(directory, staging, 0)
            if linked { return SandboxOwnerLock(descriptor: made) }
            close(made)
            // Another start linked its `.owner` first: take that one's lock, or learn it is held.
            guard raced else { return nil }
        }
        return nil
    }

    /// Takes the lock of the folder at `path`; nil when a running server holds it or the folder
    /// cannot be opened (a symlink in its place included).
    static func take(path: String) -> SandboxOwnerLock? {
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { return nil }
        defer { close(directory) }
        return take(in: directory)
    }

    /// Removes what servers that are no longer running left in `parent`: the folders named
    /// `prefix…` owned by this user whose `.owner` lock no running server holds. A folder with
    /// no `.owner` (one being made this instant, or a foreign one) is left alone. Returns the
    /// names removed.
    @discardableResult
    static func sweep(in parent: String, prefix: String) -> [String] {
        let names = SandboxFolder.names(in: parent).filter { $0.hasPrefix(prefix) }
        let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard parentFD >= 0 else { return [] }
        defer { close(parentFD) }
        return names.filter { name in
            var info = stat()
            guard fstatat(parentFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFDIR,
                  info.st_uid == geteuid() else { return false }
            let folder = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard folder >= 0 else { return false }
            defer { close(folder) }
            // Only an existing `.owner`: a folder made this instant has none yet.
            var owner = stat()
            guard fstatat(folder, fileName, &owner, AT_SYMLINK_NOFOLLOW) == 0, owner.st_mode & S_IFMT == S_IFREG,
                  let lock = take(in: folder) else { return false }
            // Held while the folder goes, so that no other sweeper starts on it.
            return withExtendedLifetime(lock) { SandboxFolder.removeTree(named: name, in: parent) }
        }
    }
}
