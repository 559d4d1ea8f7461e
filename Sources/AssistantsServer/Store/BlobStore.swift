import Foundation
import NIOCore
import _NIOFileSystem

/// Where the bytes of uploaded files live, whichever node took the upload: a port with an
/// adapter per backend (`FileBlobStore`: the data folder; `PostgresBlobStore`: chunked rows
/// every node reads). Uploads are spooled to a local temporary file first and then handed over
/// whole, so an adapter for an object store (S3) needs nothing more than these five calls.
public protocol BlobStore: Sendable {
    /// A fresh local path where an upload in progress can be written, on the file system the
    /// store's local copies live on (so handing it over is a rename).
    func temporaryPath() -> String
    /// Stores the finished local file at `path` as `fileID`, durably before it returns, and
    /// takes the file (it is moved or removed; on failure the caller removes what is left).
    func put(fileID: String, movingFileAt path: String) async throws
    /// The bytes of `fileID`, streamed in chunks; nil when there are none (never stored, or removed).
    func read(fileID: String) async throws -> BlobContent?
    /// A local file holding the bytes, for tools that need a path (text extraction, the
    /// code interpreter's staging); nil when there are no bytes. Do not modify it.
    func localPath(fileID: String) async throws -> String?
    /// Removes the bytes and any local copy; a missing blob is not an error.
    func remove(fileID: String) async throws
    /// Drops local files that serve no more (uploads a crash abandoned; copies of blobs removed
    /// through another node). Run by the housekeeping sweep.
    func tidy() async throws
}

/// Why a blob could not be stored or read: a domain error, mapped to a 500 at the HTTP edge.
public enum BlobStoreError: Error, CustomStringConvertible {
    case invalidID(String)
    case truncated(String, expected: Int, got: Int)
    case io(String)

    public var description: String {
        switch self {
        case .invalidID(let id): "invalid file id '\(id)'"
        case .truncated(let id, let expected, let got): "the bytes of '\(id)' ended after \(got) of \(expected) bytes"
        case .io(let message): message
        }
    }
}

/// The stored bytes of one file: its size and its chunks in order, each fetched when the reader
/// asks for it (back-pressure: a slow download never holds more than one chunk). A blob removed
/// while it is read ends the sequence with `BlobStoreError.truncated`, never short bytes.
public struct BlobContent: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public let size: Int
    /// The chunk at `index` (0-based), nil past the last.
    let chunk: @Sendable (Int) async throws -> ByteBuffer?
    let fileID: String

    public init(fileID: String, size: Int, chunk: @escaping @Sendable (Int) async throws -> ByteBuffer?) {
        self.fileID = fileID
        self.size = size
        self.chunk = chunk
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let content: BlobContent
        var index = 0
        var delivered = 0

        public mutating func next() async throws -> ByteBuffer? {
            guard delivered < content.size else { return nil }
            guard let bytes = try await content.chunk(index), bytes.readableBytes > 0 else {
                throw BlobStoreError.truncated(content.fileID, expected: content.size, got: delivered)
            }
            index += 1
            delivered += bytes.readableBytes
            return bytes
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(content: self) }

    /// Up to `limit` bytes from the start (what an image check or an image part needs).
    public func prefix(bytes limit: Int) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        for try await var chunk in self {
            let take = Swift.min(chunk.readableBytes, limit - collected.readableBytes)
            if let slice = chunk.readSlice(length: take) { collected.writeImmutableBuffer(slice) }
            if collected.readableBytes >= limit { break }
        }
        return collected
    }
}

extension BlobStore {
    /// Stores bytes the server itself made (a code interpreter output) as `fileID`.
    public func put(fileID: String, bytes: ByteBuffer) async throws {
        let temporary = temporaryPath()
        do {
            try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(temporary), options: .newFile(replaceExisting: true)) { handle in
                try await handle.write(contentsOf: bytes, toAbsoluteOffset: 0)
                try await handle.synchronize()
            }
            try await put(fileID: fileID, movingFileAt: temporary)
        } catch {
            await removeTemporary(temporary)
            throw error
        }
    }

    /// Removes a temporary file left by a failed upload (nothing when it is gone).
    public func removeTemporary(_ path: String) async {
        _ = try? await Offload.run { unlink(path) }
    }
}

/// The folder of local blob files (`<data-dir>/files`): the blobs themselves for `FileBlobStore`,
/// a cache of the database's for `PostgresBlobStore`, and the uploads in progress for both.
/// The client's filename is never part of a path: only server-made ids are.
struct BlobFolder: Sendable {
    static let chunkSize = 1024 * 1024
    let directory: String

    init(dataDirectory: String) throws {
        directory = (dataDirectory as NSString).appendingPathComponent("files")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// The path of a file id's bytes. Ids are server-made (`file-` + alphanumerics); anything else has no path.
    func path(for fileID: String) -> String? {
        guard fileID.hasPrefix("file-"), fileID.count <= 64,
              fileID.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
        else { return nil }
        return (directory as NSString).appendingPathComponent(fileID)
    }

    func checkedPath(for fileID: String) throws -> String {
        guard let path = path(for: fileID) else { throw BlobStoreError.invalidID(fileID) }
        return path
    }

    func temporaryPath() -> String {
        (directory as NSString).appendingPathComponent(".upload-\(UUID().uuidString)")
    }

    /// Moves a finished file into place; with `durable`, the folder is fsynced after the rename
    /// (the file itself was synchronized by its writer). Off the event loop.
    func move(_ temporary: String, to destination: String, durable: Bool) async throws {
        let directory = directory
        let failure = try await Offload.run { () -> Int32? in
            guard rename(temporary, destination) == 0 else { return errno }
            if durable {
                let descriptor = Foundation.open(directory, O_RDONLY)
                if descriptor >= 0 {
                    fsync(descriptor)
                    close(descriptor)
                }
            }
            return nil
        }
        if let failure { throw BlobStoreError.io("could not store the file (errno \(failure))") }
    }

    /// The size of the local file at `path`, nil when there is none.
    func size(at path: String) async throws -> Int? {
        guard let info = try await FileSystem.shared.info(forFileAt: FilePath(path), infoAboutSymbolicLink: false),
              info.type == .regular else { return nil }
        return Int(info.size)
    }

    /// The local file's content, read a chunk at a time.
    func content(fileID: String, path: String, size: Int) -> BlobContent {
        BlobContent(fileID: fileID, size: size) { index in
            try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                try await handle.readChunk(fromAbsoluteOffset: Int64(index) * Int64(Self.chunkSize), length: .bytes(Int64(Self.chunkSize)))
            }
        }
    }

    func remove(_ path: String) async {
        _ = try? await Offload.run { unlink(path) }
    }

    /// The ids of the local files, after removing temporary uploads older than a day.
    func tidyTemporariesAndListIDs() async throws -> [String] {
        let directory = directory
        return try await Offload.run {
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)  // blocking-ok: in Offload
            let dayAgo = Date().addingTimeInterval(-86_400)
            for name in names where name.hasPrefix(".upload-") {
                let path = (directory as NSString).appendingPathComponent(name)
                if let modified = try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date, modified < dayAgo {  // blocking-ok: in Offload
                    unlink(path)
                }
            }
            return names.filter { $0.hasPrefix("file-") }
        }
    }
}

/// The blob stores `--blob-store` / `ASSISTANTS_BLOB_STORE` chooses from.
public enum BlobStoreKind: String, Sendable, CaseIterable {
    case file, postgres

    /// The default for a database URL: `postgres` on PostgreSQL (every node reads every file), else `file`.
    public static func defaultKind(databaseURL: String) -> BlobStoreKind {
        isPostgres(databaseURL) ? .postgres : .file
    }

    static func isPostgres(_ databaseURL: String) -> Bool {
        databaseURL.hasPrefix("postgres://") || databaseURL.hasPrefix("postgresql://")
    }

    /// Refuses a choice the database cannot hold, before anything starts.
    public func check(databaseURL: String) throws {
        if self == .postgres, !Self.isPostgres(databaseURL) {
            throw ConfigurationError("ASSISTANTS_BLOB_STORE=postgres needs a PostgreSQL database (ASSISTANTS_DATABASE_URL=postgres://…); use 'file' with SQLite")
        }
    }

    /// The store, over the opened database.
    func make(driver: any DatabaseDriver, dataDirectory: String) throws -> any BlobStore {
        switch self {
        case .file: try FileBlobStore(dataDirectory: dataDirectory)
        case .postgres: try PostgresBlobStore(driver: driver, dataDirectory: dataDirectory)
        }
    }
}
