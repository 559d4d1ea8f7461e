import Foundation
import NIOCore
import SQLKit
import _NIOFileSystem

/// The `postgres` blob store, the default with PostgreSQL: every node of a cluster reads the
/// bytes any node took. A blob is its 1 MiB chunks in `blob_chunks` plus a `blobs` row with its
/// size, all written in one transaction: a blob without its row is never read, and an
/// acknowledged upload is committed. Chunks stream both ways, one at a time. A node keeps a
/// copy under its data folder for tools that need a path (made atomically: temporary file, rename).
public struct PostgresBlobStore: BlobStore {
    let driver: any DatabaseDriver
    let folder: BlobFolder

    public init(driver: any DatabaseDriver, dataDirectory: String) throws {
        guard driver.dialect == .postgres else {
            throw ConfigurationError("ASSISTANTS_BLOB_STORE=postgres needs a PostgreSQL database (ASSISTANTS_DATABASE_URL=postgres://…); use 'file' with SQLite")
        }
        self.driver = driver
        folder = try BlobFolder(dataDirectory: dataDirectory)
    }

    public func temporaryPath() -> String { folder.temporaryPath() }

    public func put(fileID: String, movingFileAt path: String) async throws {
        let cachePath = try folder.checkedPath(for: fileID)
        try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
            try await driver.withTransaction { database in
                try await database.raw("DELETE FROM blob_chunks WHERE file_id = \(bind: fileID)").run()
                var size = 0
                var seq = 0
                while true {
                    let chunk = try await handle.readChunk(fromAbsoluteOffset: Int64(size), length: .bytes(Int64(BlobFolder.chunkSize)))
                    if chunk.readableBytes == 0 { break }
                    try await database.raw("INSERT INTO blob_chunks (file_id, seq, bytes) VALUES (\(bind: fileID), \(bind: seq), \(bind: chunk))").run()
                    size += chunk.readableBytes
                    seq += 1
                }
                try await database.raw("""
                    INSERT INTO blobs (file_id, size, chunks, created_at) VALUES (\(bind: fileID), \(bind: size), \(bind: seq), \(bind: unixNow()))
                    ON CONFLICT (file_id) DO UPDATE SET size = excluded.size, chunks = excluded.chunks
                    """).run()
            }
        }
        // Committed: the spooled upload becomes this node's copy (no fsync: the database holds the bytes).
        try await folder.move(path, to: cachePath, durable: false)
    }

    /// The blob's size, nil when there is no complete blob.
    func size(of fileID: String) async throws -> Int? {
        try await driver.withReader { database in
            try await database.raw("SELECT size FROM blobs WHERE file_id = \(bind: fileID)").first()?.decode(column: "size", as: Int.self)
        }
    }

    public func read(fileID: String) async throws -> BlobContent? {
        guard let size = try await size(of: fileID) else { return nil }
        // This node's copy when it has a whole one; else the rows, a chunk per query.
        if let path = folder.path(for: fileID), try await folder.size(at: path) == size {
            return folder.content(fileID: fileID, path: path, size: size)
        }
        let driver = driver
        return BlobContent(fileID: fileID, size: size) { index in
            try await driver.withReader { database in
                try await database.raw("SELECT bytes FROM blob_chunks WHERE file_id = \(bind: fileID) AND seq = \(bind: index)")
                    .first()?.decode(column: "bytes", as: ByteBuffer.self)
            }
        }
    }

    public func localPath(fileID: String) async throws -> String? {
        let path = try folder.checkedPath(for: fileID)
        guard let size = try await size(of: fileID) else {
            await folder.remove(path)  // removed through another node: this copy is stale
            return nil
        }
        if try await folder.size(at: path) == size { return path }
        guard let content = try await read(fileID: fileID) else { return nil }
        let temporary = folder.temporaryPath()
        do {
            try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(temporary), options: .newFile(replaceExisting: true)) { handle in
                var offset: Int64 = 0
                for try await chunk in content {
                    try await handle.write(contentsOf: chunk, toAbsoluteOffset: offset)
                    offset += Int64(chunk.readableBytes)
                }
            }
            try await folder.move(temporary, to: path, durable: false)
        } catch {
            await folder.remove(temporary)
            throw error
        }
        return path
    }

    /// Also removes the blobs of files that were never recorded (a crash between storing the
    /// bytes and inserting the file) once they are an hour old.
    public func tidy() async throws {
        let unrecorded: SQLQueryString = """
            SELECT b.file_id FROM blobs b WHERE b.created_at < \(bind: unixNow() - 3600)
            AND NOT EXISTS (SELECT 1 FROM \(unsafeRaw: ObjectKind.file.rawValue) f WHERE f.id = b.file_id)
            """
        try await driver.withTransaction { database in
            try await database.raw("DELETE FROM blob_chunks WHERE file_id IN (\(unrecorded))").run()
            try await database.raw("DELETE FROM blobs WHERE file_id IN (\(unrecorded))").run()
        }
        let local = try await folder.tidyTemporariesAndListIDs()
        for slice in local.bindBatches() {
            let batch = Array(slice)
            let kept = try await driver.withReader { database in
                try await database.raw("SELECT file_id FROM blobs WHERE file_id IN (\(binds: batch))").all()
                    .map { try $0.decode(column: "file_id", as: String.self) }
            }
            for stale in Set(batch).subtracting(kept) {
                if let path = folder.path(for: stale) { await folder.remove(path) }
            }
        }
    }

    public func remove(fileID: String) async throws {
        try await driver.withTransaction { database in
            try await database.raw("DELETE FROM blobs WHERE file_id = \(bind: fileID)").run()
            try await database.raw("DELETE FROM blob_chunks WHERE file_id = \(bind: fileID)").run()
        }
        if let path = folder.path(for: fileID) { await folder.remove(path) }
    }
}
