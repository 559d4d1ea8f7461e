import Foundation

/// The `file` blob store, the default with SQLite: each file's bytes under
/// `<data-dir>/files/<file-id>`, put in place by a rename followed by an fsync of the folder.
/// Only the node that owns the folder can read them.
public struct FileBlobStore: BlobStore {
    let folder: BlobFolder

    public init(dataDirectory: String) throws {
        folder = try BlobFolder(dataDirectory: dataDirectory)
    }

    public func temporaryPath() -> String { folder.temporaryPath() }

    public func put(fileID: String, movingFileAt path: String) async throws {
        try await folder.move(path, to: folder.checkedPath(for: fileID), durable: true)
    }

    public func read(fileID: String) async throws -> BlobContent? {
        guard let path = folder.path(for: fileID), let size = try await folder.size(at: path) else { return nil }
        return folder.content(fileID: fileID, path: path, size: size)
    }

    public func localPath(fileID: String) async throws -> String? {
        guard let path = folder.path(for: fileID), try await folder.size(at: path) != nil else { return nil }
        return path
    }

    public func remove(fileID: String) async throws {
        if let path = folder.path(for: fileID) { await folder.remove(path) }
    }

    public func tidy() async throws {
        _ = try await folder.tidyTemporariesAndListIDs()
    }
}
