import Foundation
import NIOCore
import Testing
@testable import AssistantsServer

/// Both blob stores (the data folder, and PostgreSQL's chunked rows when
/// `ASSISTANTS_TEST_POSTGRES_URL` is set): round trips of multi-chunk files read as a stream,
/// the copy another node makes of a blob, removal, missing and invalid ids.
@Suite struct BlobStoreTests {
    static var kinds: [BlobStoreKind] { TestSupport.postgresURL == nil ? [.file] : [.file, .postgres] }

    /// A store of `kind` over a fresh data folder (PostgreSQL: the shared test database).
    static func open(_ kind: BlobStoreKind) async throws -> (ObjectStore, any BlobStore) {
        let url = TestSupport.databaseURL(kind == .postgres ? "postgres" : "sqlite")
        let store = try await ObjectStore.open(url: url, logger: TestSupport.logger)
        return (store, try kind.make(driver: store.driver, dataDirectory: TestSupport.temporaryDirectory()))
    }

    /// `count` pseudo-random bytes (a different pattern per seed).
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    /// Spools `bytes` to a temporary upload path, as an upload does, and puts it.
    static func upload(_ bytes: [UInt8], as fileID: String, to blobs: any BlobStore) async throws {
        let temporary = blobs.temporaryPath()
        try Data(bytes).write(to: URL(fileURLWithPath: temporary))
        try await blobs.put(fileID: fileID, movingFileAt: temporary)
        #expect(!FileManager.default.fileExists(atPath: temporary), "the upload's temporary file was taken")
    }

    static func readAll(_ content: BlobContent) async throws -> (bytes: [UInt8], chunks: [Int]) {
        var bytes: [UInt8] = []
        var chunks: [Int] = []
        for try await chunk in content {
            chunks.append(chunk.readableBytes)
            bytes += chunk.readableBytesView
        }
        return (bytes, chunks)
    }

    @Test(arguments: kinds)
    func multiChunkRoundTripStreamsInChunks(kind: BlobStoreKind) async throws {
        let (store, blobs) = try await Self.open(kind)
        defer { Task { await store.shutdown() } }
        let size = 3 * BlobFolder.chunkSize + 4321
        let data = Self.bytes(size, seed: 7)
        let id = IDPrefix.file.makeID()
        try await Self.upload(data, as: id, to: blobs)

        let content = try #require(try await blobs.read(fileID: id))
        #expect(content.size == size)
        let (read, chunks) = try await Self.readAll(content)
        #expect(read == data)
        #expect(chunks.count == 4, "streamed a chunk at a time: \(chunks)")
        #expect(chunks.allSatisfy { $0 <= BlobFolder.chunkSize })

        let path = try #require(try await blobs.localPath(fileID: id))
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == data)
        #expect(try await content.prefix(bytes: 12) == ByteBuffer(bytes: data.prefix(12)))

        // Bytes the server makes itself, and an empty file.
        let made = IDPrefix.file.makeID()
        try await blobs.put(fileID: made, bytes: ByteBuffer(string: "made here"))
        #expect(try await Self.readAll(#require(try await blobs.read(fileID: made))).bytes == Array("made here".utf8))
        let empty = IDPrefix.file.makeID()
        try await Self.upload([], as: empty, to: blobs)
        let none = try #require(try await blobs.read(fileID: empty))
        #expect(none.size == 0)
        #expect(try await Self.readAll(none).bytes.isEmpty)
    }

    @Test(arguments: kinds)
    func removeAndMissingIDs(kind: BlobStoreKind) async throws {
        let (store, blobs) = try await Self.open(kind)
        defer { Task { await store.shutdown() } }
        let id = IDPrefix.file.makeID()
        try await Self.upload(Self.bytes(BlobFolder.chunkSize + 1, seed: 3), as: id, to: blobs)
        let path = try #require(try await blobs.localPath(fileID: id))
        try await blobs.remove(fileID: id)
        #expect(try await blobs.read(fileID: id) == nil)
        #expect(try await blobs.localPath(fileID: id) == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        try await blobs.remove(fileID: id)  // again: not an error

        #expect(try await blobs.read(fileID: IDPrefix.file.makeID()) == nil)
        #expect(try await blobs.read(fileID: "../../etc/passwd") == nil)
        await #expect(throws: BlobStoreError.self) {
            try await blobs.put(fileID: "../escape", bytes: ByteBuffer(string: "x"))
        }
    }

    /// Two nodes on one database, each with its own data folder: what one stores the other reads,
    /// streams from the rows, and copies to its folder; a removal on one is seen by the other.
    @Test func postgresBlobsAreReadByAnotherNode() async throws {
        guard TestSupport.postgresURL != nil else { return }
        let (storeA, nodeA) = try await Self.open(.postgres)
        let (storeB, nodeB) = try await Self.open(.postgres)
        defer { Task { await storeA.shutdown(); await storeB.shutdown() } }
        let data = Self.bytes(2 * BlobFolder.chunkSize + 99, seed: 11)
        let id = IDPrefix.file.makeID()
        try await Self.upload(data, as: id, to: nodeA)

        let (read, chunks) = try await Self.readAll(#require(try await nodeB.read(fileID: id)))
        #expect(read == data)
        #expect(chunks == [BlobFolder.chunkSize, BlobFolder.chunkSize, 99])
        let copy = try #require(try await nodeB.localPath(fileID: id))
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: copy))) == data)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (copy as NSString).deletingLastPathComponent)
        #expect(leftovers == [id], "no temporary file is left beside the copy: \(leftovers)")


        // The housekeeping sweep drops B's copies of blobs removed through A, and keeps the others.
        let kept = IDPrefix.file.makeID()
        try await Self.upload(Self.bytes(10, seed: 1), as: kept, to: nodeA)
        let keptCopy = try #require(try await nodeB.localPath(fileID: kept))
        let gone = IDPrefix.file.makeID()
        try await Self.upload(Self.bytes(10, seed: 2), as: gone, to: nodeA)
        let goneCopy = try #require(try await nodeB.localPath(fileID: gone))
        try await nodeA.remove(fileID: gone)
        // A blob whose file was never recorded goes once it is an hour old (these have no file row; only this one is old).
        let unrecorded = IDPrefix.file.makeID()
        try await Self.upload(Self.bytes(10, seed: 3), as: unrecorded, to: nodeA)
        try await storeA.driver.withTransaction { database in
            try await database.raw("UPDATE blobs SET created_at = created_at - 7200 WHERE file_id = \(bind: unrecorded)").run()
        }
        try await nodeB.tidy()
        #expect(!FileManager.default.fileExists(atPath: goneCopy))
        #expect(FileManager.default.fileExists(atPath: keptCopy))
        #expect(try await nodeA.read(fileID: unrecorded) == nil)
        #expect(try await nodeA.read(fileID: kept) != nil)

        try await nodeA.remove(fileID: id)
        #expect(try await nodeB.read(fileID: id) == nil)
        #expect(try await nodeB.localPath(fileID: id) == nil)
        #expect(!FileManager.default.fileExists(atPath: copy), "B's stale copy is dropped")
    }

    @Test func postgresIsRefusedWithSQLite() throws {
        #expect(throws: ConfigurationError.self) { try BlobStoreKind.postgres.check(databaseURL: "sqlite://data/a.sqlite") }
        #expect(BlobStoreKind.defaultKind(databaseURL: "sqlite://x") == .file)
        #expect(BlobStoreKind.defaultKind(databaseURL: "postgres://u:p@h/db") == .postgres)
        try BlobStoreKind.file.check(databaseURL: "postgres://u:p@h/db")
    }
}
