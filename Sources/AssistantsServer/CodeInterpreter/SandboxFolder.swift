import Foundation
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The session folder (the sandbox's /mnt/data) as seen by the server, which runs as root while code
/// in the sandbox can change the folder at any moment (a thread left running, a symlink swapped in).
/// Every path is resolved from the folder's descriptor one plain name at a time with `O_NOFOLLOW`,
/// files are created with `O_EXCL` and changed through their descriptors, and the walk uses
/// `fstatat(AT_SYMLINK_NOFOLLOW)`: no symlink, and no path the kernel reports, leads outside the folder.
/// All of it blocks: call it inside `Offload.run`, never on an event loop.
final class SandboxFolder {
    /// Bounds of one walk; past them the folder counts as over its quota.
    static let maxEntries = 200_000
    static let maxDepth = 128

    let descriptor: Int32

    /// Opens the folder itself; a symlink in its place is refused.
    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SandboxFolderError("cannot open the session folder (errno \(errno))") }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// The plain name chain of a path inside the sandbox (`/mnt/data/a/b.csv` -> `["a", "b.csv"]`);
    /// nil for anything else (`..`, `.`, empty names, NUL, other roots, absurd lengths).
    static func components(ofSandboxPath path: String) -> [String]? {
        let prefix = "/mnt/data/"
        guard path.hasPrefix(prefix), path.utf8.count < 4096 else { return nil }
        let parts = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.count <= maxDepth, parts.allSatisfy(isPlainName) else { return nil }
        return parts
    }

    /// A single path component that names an entry of its folder.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.utf8.contains(0) && name.utf8.count <= 255
    }

    /// Opens the folder holding the last component, following no link; the caller closes it
    /// unless it is `descriptor`.
    private func openParent(of components: [String]) -> (fd: Int32, name: String)? {
        guard let name = components.last else { return nil }
        var current = descriptor
        for part in components.dropLast() {
            let next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            if current != descriptor { close(current) }
            guard next >= 0 else { return nil }
            current = next
        }
        return (current, name)
    }

    /// Bytes held by regular files anywhere in the folder, without following links; nil when the
    /// folder is beyond the walk's bounds (too many entries or too deep), which counts as over quota.
    func usage() -> Int? {
        let start = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard start >= 0 else { return nil }
        var entries = 0
        return Self.walk(start, depth: 0, entries: &entries)
    }

    /// Sums one directory (taking ownership of `fd`) and what is below it.
    private static func walk(_ fd: Int32, depth: Int, entries: inout Int) -> Int? {
        guard let directory = fdopendir(fd) else {
            close(fd)
            return nil
        }
        defer { closedir(directory) }
        let dfd = dirfd(directory)
        var total = 0
        while let entry = readdir(directory) {
            // The raw bytes of the name: a name that is not UTF-8 must still be found again.
            var name = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                Array(raw.bindMemory(to: CChar.self).prefix { $0 != 0 })
            }
            if name == [46] || name == [46, 46] { continue }
            entries += 1
            guard entries <= maxEntries else { return nil }
            name.append(0)
            var info = stat()
            guard fstatat(dfd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                total += Int(info.st_size)
            case S_IFDIR:
                guard depth + 1 < maxDepth else { return nil }
                let child = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
                guard child >= 0 else { continue }
                guard let sub = walk(child, depth: depth + 1, entries: &entries) else { return nil }
                total += sub
            default:
                continue
            }
        }
        return total
    }

    /// The names in the folder `path` that `isPlainName` accepts (no `.`, `..`), unsorted; none
    /// when it cannot be read.
    static func names(in path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if isPlainName(name) { names.append(name) }
        }
        return names
    }

    /// Removes the folder `name` in `parent` with everything in it, descending by descriptor and
    /// following no link (a link is removed, never its target). True when nothing is left.
    static func removeTree(named name: String, in parent: String) -> Bool {
        guard isPlainName(name) else { return false }
        let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard parentFD >= 0 else { return false }
        defer { close(parentFD) }
        var entries = 0
        return removeTree(in: parentFD, name: Array(name.utf8CString), depth: 0, entries: &entries)
    }

    /// Empties and removes the folder `name` (NUL-terminated bytes) of the directory `dfd`.
    private static func removeTree(in dfd: Int32, name: [CChar], depth: Int, entries: inout Int) -> Bool {
        guard depth < maxDepth else { return false }
        let fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return errno == ENOENT }
        guard let directory = fdopendir(fd) else {
            close(fd)
            return false
        }
        let childFD = dirfd(directory)
        var complete = true
        var names: [[CChar]] = []
        while let entry = readdir(directory) {
            var child = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                Array(raw.bindMemory(to: CChar.self).prefix { $0 != 0 })
            }
            if child == [46] || child == [46, 46] { continue }
            entries += 1
            guard entries <= maxEntries else { complete = false; break }
            child.append(0)
            names.append(child)
        }
        for child in names {
            var info = stat()
            guard fstatat(childFD, child, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                if !removeTree(in: childFD, name: child, depth: depth + 1, entries: &entries) { complete = false }
            } else if unlinkat(childFD, child, 0) != 0 {
                complete = false
            }
        }
        closedir(directory)
        return unlinkat(dfd, name, AT_REMOVEDIR) == 0 && complete
    }

    /// Removes one file (never a folder, never through a link) named by a chain inside the folder.
    @discardableResult
    func removeFile(_ components: [String]) -> Bool {
        guard components.allSatisfy(Self.isPlainName), let (parent, name) = openParent(of: components) else { return false }
        defer { if parent != descriptor { close(parent) } }
        return unlinkat(parent, name, 0) == 0
    }

    /// The bytes of a regular file named by a chain inside the folder, opened without following
    /// links and without blocking on a fifo; nil if it is anything else or larger than `maxBytes`.
    func readRegularFile(_ components: [String], maxBytes: Int) -> [UInt8]? {
        guard components.allSatisfy(Self.isPlainName), let (parent, name) = openParent(of: components) else { return nil }
        let fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if parent != descriptor { close(parent) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= maxBytes else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while bytes.count <= maxBytes {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes.count <= maxBytes ? bytes : nil
    }

    /// Copies `source` (a server file) into the folder as `name`, created exclusively (an existing
    /// entry, or a symlink in its place, is left alone: false), then owned by `owner` and made 0644
    /// through the new file's descriptor.
    func stage(name: String, from source: String, owner: uid_t) throws -> Bool {
        guard Self.isPlainName(name) else { throw SandboxFolderError("not a plain file name") }
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw SandboxFolderError("cannot open the input file (errno \(errno))") }
        defer { close(input) }
        let output = openat(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if output < 0 {
            if errno == EEXIST { return false }
            throw SandboxFolderError("cannot create \(name) in the session folder (errno \(errno))")
        }
        defer { close(output) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                unlinkat(descriptor, name, 0)
                throw SandboxFolderError("cannot read the input file (errno \(errno))")
            }
            if count == 0 { break }
            var offset = 0
            while offset < count {
                let written = chunk.withUnsafeBytes { raw in raw.baseAddress.map { write(output, $0 + offset, count - offset) } ?? -1 }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    unlinkat(descriptor, name, 0)
                    throw SandboxFolderError("cannot write \(name) (errno \(errno))")
                }
                offset += written
            }
        }
        guard fchown(output, owner, gid_t(owner)) == 0, fchmod(output, 0o644) == 0 else {
            unlinkat(descriptor, name, 0)
            throw SandboxFolderError("cannot hand \(name) to the sandbox user (errno \(errno))")
        }
        return true
    }
}

/// A failure of the session folder's file handling.
struct SandboxFolderError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
