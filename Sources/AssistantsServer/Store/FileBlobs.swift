import Foundation
import NIOCore
import _NIOFileSystem

/// The bytes of uploaded files, under `<data-dir>/files/<file-id>`. The client's filename is
/// metadata only and never part of a path.
public struct FileBlobs: Sendable {
    public let directory: String

    public init(dataDirectory: String) throws {
        self.directory = (dataDirectory as NSString).appendingPathComponent("files")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// The path of a file id's bytes. Ids are server-made (`file-` + alphanumerics); anything else has no path.
    public func path(for fileID: String) -> String? {
        guard fileID.hasPrefix("file-"), fileID.count <= 64,
              fileID.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
        else { return nil }
        return (directory as NSString).appendingPathComponent(fileID)
    }

    /// A fresh temporary path in the same directory, for an upload in progress.
    public func temporaryPath() -> String {
        (directory as NSString).appendingPathComponent(".upload-\(UUID().uuidString)")
    }

    /// Moves a finished upload into place, durably (the rename and the folder's fsync off the event loop).
    public func commit(temporaryPath: String, fileID: String) async throws {
        guard let destination = path(for: fileID) else { throw APIError.server("invalid file id") }
        let directory = directory
        let failure = try await Offload.run { () -> Int32? in
            guard rename(temporaryPath, destination) == 0 else { return errno }
            let descriptor = Foundation.open(directory, O_RDONLY)
            if descriptor >= 0 {
                fsync(descriptor)
                close(descriptor)
            }
            return nil
        }
        if let failure { throw APIError.server("could not store the uploaded file (errno \(failure))") }
    }

    /// Writes bytes as a new file (for files the server itself makes).
    public func write(_ bytes: ByteBuffer, fileID: String) async throws {
        let temporary = temporaryPath()
        try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(temporary), options: .newFile(replaceExisting: true)) { handle in
            try await handle.write(contentsOf: bytes, toAbsoluteOffset: 0)
            try await handle.synchronize()
        }
        try await commit(temporaryPath: temporary, fileID: fileID)
    }

    public func remove(fileID: String) async {
        if let path = path(for: fileID) { await removeTemporary(path) }
    }

    public func removeTemporary(_ path: String) async {
        _ = try? await Offload.run { unlink(path) }
    }
}
