import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import AssistantsServer

/// Vector search at scale: the packed encoding, the in-memory index against a brute-force
/// reference, the LRU cache and its invalidation, and the bad inputs (mixed dimensions, empty stores).
@Suite struct VectorIndexTests {
    static let databases = TestSupport.databases

    /// Deterministic pseudo-random floats in -1...1 (xorshift), so failures reproduce.
    struct Numbers {
        var state: UInt64
        mutating func next() -> Float {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Float(state % 2_000_001) / 1_000_000 - 1
        }
        mutating func vector(_ dimensions: Int) -> [Float] { (0..<dimensions).map { _ in next() } }
    }

    static func index(rows: Int, dimensions: Int, seed: UInt64, firstSeq: Int = 1) -> (VectorIndex, [[Float]]) {
        var numbers = Numbers(state: seed)
        let vectors = (0..<rows).map { _ in numbers.vector(dimensions) }
        let builder = VectorIndexBuilder(expectedRows: rows)
        builder.add(vectors.enumerated().map { (firstSeq + $0.offset, VectorCodec.encode($0.element)) })
        return (builder.finish(), vectors)
    }

    /// The reference: every row's cosine in Double, sorted.
    static func bruteForce(_ vectors: [[Float]], query: [Float], k: Int, firstSeq: Int = 1) -> [Int] {
        func norm(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
        let scored = vectors.enumerated().map { offset, vector in
            (seq: firstSeq + offset, score: zip(vector, query).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } / (norm(vector) * norm(query)))
        }
        return scored.sorted { $0.score > $1.score }.prefix(k).map(\.seq)
    }

    @Test func packedEncodingIsLittleEndianFloat32() {
        let data = VectorCodec.encode([1, -2.5, 0])
        #expect(Array(data) == [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0, 0, 0, 0, 0])
        #expect(VectorCodec.decode(data) == [1, -2.5, 0])
        var numbers = Numbers(state: 7)
        let vector = numbers.vector(384)
        #expect(VectorCodec.decode(VectorCodec.encode(vector)) == vector)
        #expect(VectorCodec.dimensions(of: data) == 3)
        #expect(VectorCodec.dimensions(of: Data([1, 2, 3])) == nil)
        #expect(VectorCodec.dimensions(of: Data()) == nil)
    }

    @Test(arguments: [(rows: 3000, dimensions: 40, k: 25), (rows: 500, dimensions: 384, k: 10), (rows: 40000, dimensions: 16, k: 50), (rows: 7, dimensions: 5, k: 20)])
    func topKMatchesBruteForce(rows: Int, dimensions: Int, k: Int) async throws {
        let (index, vectors) = Self.index(rows: rows, dimensions: dimensions, seed: UInt64(rows * 31 + dimensions))
        var numbers = Numbers(state: 99)
        for _ in 0..<3 {
            let query = Embedder.normalized(numbers.vector(dimensions))
            let found = try await index.nearest(to: query, k: k)
            #expect(found.map(\.seq) == Self.bruteForce(vectors, query: query, k: k))
            #expect(found.count == min(k, rows))
            // Scores are cosines, best first.
            #expect(zip(found, found.dropFirst()).allSatisfy { $0.score >= $1.score })
            #expect(found.allSatisfy { abs($0.score) <= 1.0001 })
        }
    }

    @Test func splittingOverPartsGivesTheSameTopK() {
        let (index, _) = Self.index(rows: 5000, dimensions: 33, seed: 3)
        var numbers = Numbers(state: 5)
        let query = Embedder.normalized(numbers.vector(33))
        var merged: [(row: Int, score: Float)] = []
        for part in [0..<1234, 1234..<4000, 4000..<5000] { merged += index.score(query, rows: part, k: 30).sorted() }
        let fromParts = merged.sorted { $0.score > $1.score || ($0.score == $1.score && $0.row < $1.row) }.prefix(30).map(\.row)
        #expect(fromParts == index.score(query, rows: 0..<5000, k: 30).sorted().map(\.row))
    }

    @Test func mixedDimensionsAreReportedNotIndexed() {
        let builder = VectorIndexBuilder(expectedRows: 3)
        builder.add([(1, VectorCodec.encode([1, 0, 0])), (2, VectorCodec.encode([0, 1, 0, 0])), (3, VectorCodec.encode([0, 0, 1]))])
        let index = builder.finish()
        #expect(index.mixedDimensions == [3, 4])
        #expect(index.count == 0)
    }

    @Test func cacheEvictsTheLeastRecentlyUsedWithinItsBudget() async throws {
        let (one, _) = Self.index(rows: 100, dimensions: 16, seed: 1)
        let cache = VectorIndexCache(budgetBytes: one.byteSize * 2)
        func key(_ id: String) -> VectorIndexCache.Key { .init(project: "p", vectorStoreID: id) }
        let loads = NIOLockedValueBox(0)
        func load() -> @Sendable () async throws -> VectorIndex {
            { loads.withLockedValue { $0 += 1 }; return one }
        }
        _ = try await cache.index(for: key("a"), generation: 1, load: load())
        _ = try await cache.index(for: key("b"), generation: 1, load: load())
        _ = try await cache.index(for: key("a"), generation: 1, load: load())
        #expect(loads.withLockedValue { $0 } == 2)
        _ = try await cache.index(for: key("c"), generation: 1, load: load())
        #expect(await cache.cachedKeys == [key("a"), key("c")])
        #expect(await cache.cachedBytes <= one.byteSize * 2)
        // "b" was evicted: it loads again, and evicts "a" (now the least recently used).
        _ = try await cache.index(for: key("b"), generation: 1, load: load())
        #expect(loads.withLockedValue { $0 } == 4)
        #expect(await cache.cachedKeys == [key("c"), key("b")])
        // An index larger than the whole budget serves its search but is not kept.
        let (big, _) = Self.index(rows: 1000, dimensions: 16, seed: 2)
        let served = try await cache.index(for: key("big"), generation: 1) { big }
        #expect(served.count == 1000)
        #expect(await cache.cachedKeys == [key("c"), key("b")])
    }

    @Test func cacheReloadsWhenTheGenerationMovesAndSharesOneLoad() async throws {
        let (index, _) = Self.index(rows: 10, dimensions: 4, seed: 4)
        let cache = VectorIndexCache(budgetBytes: 1 << 20)
        let key = VectorIndexCache.Key(project: "p", vectorStoreID: "vs")
        let loads = NIOLockedValueBox(0)
        let load: @Sendable () async throws -> VectorIndex = {
            loads.withLockedValue { $0 += 1 }
            try await Task.sleep(for: .milliseconds(50))
            return index
        }
        // Ten concurrent searches of a cold store: one load.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 { group.addTask { _ = try await cache.index(for: key, generation: 3, load: load) } }
            try await group.waitForAll()
        }
        #expect(loads.withLockedValue { $0 } == 1)
        _ = try await cache.index(for: key, generation: 3, load: load)
        #expect(loads.withLockedValue { $0 } == 1)
        _ = try await cache.index(for: key, generation: 4, load: load)
        #expect(loads.withLockedValue { $0 } == 2)
        await cache.invalidate(vectorStoreID: "vs")
        _ = try await cache.index(for: key, generation: 4, load: load)
        #expect(loads.withLockedValue { $0 } == 3)
    }

    // MARK: - Through the store

    func withStore(_ database: String, _ body: (ObjectStore, String) async throws -> Void) async throws {
        let store = try await ObjectStore.open(url: TestSupport.databaseURL(database), logger: TestSupport.logger)
        do {
            try await body(store, TestSupport.uniqueProject())
        } catch {
            await store.shutdown()
            throw error
        }
        await store.shutdown()
    }

    static func chunks(_ texts: [String], embeddings: [[Float]?]) -> [Chunk] {
        texts.enumerated().map { offset, text in
            Chunk(index: offset, startOffset: offset * 100, endOffset: offset * 100 + text.utf8.count, text: text, embedding: embeddings[offset])
        }
    }

    /// An embedder that maps each known word to an axis: what a query "means" is chosen by the test.
    static func axisEmbedder(dimensions: Int, calls: NIOLockedValueBox<Int> = .init(0)) -> Embedder {
        Embedder(model: "axes") { texts in
            calls.withLockedValue { $0 += 1 }
            return texts.map { text in
                var vector = [Float](repeating: 0.01, count: dimensions)
                for (axis, word) in ["apple", "river", "engine", "violin"].enumerated() where text.contains(word) && axis < dimensions {
                    vector[axis] = 1
                }
                return vector
            }
        }
    }

    static func axis(_ axis: Int, _ dimensions: Int) -> [Float] {
        (0..<dimensions).map { $0 == axis ? 1 : 0 }
    }

    /// A new vector store holding `files` (a file id, its chunks' texts and their embeddings; all
    /// written in one transaction), and a FileSearch over `store` whose queries are embedded on
    /// `dimensions` axes (`axisEmbedder`).
    static func searchableStore(_ store: ObjectStore, project: String, dimensions: Int,
                                files: [(fileID: String, texts: [String], embeddings: [[Float]?])]) async throws -> (id: String, search: FileSearch) {
        let id = "vs_" + UUID().uuidString
        let search = FileSearch(store: store, embedder: axisEmbedder(dimensions: dimensions), vectors: VectorIndexCache(budgetBytes: 1 << 20))
        try await store.write(project: project) { session in
            for file in files {
                try await session.insertChunks(chunks(file.texts, embeddings: file.embeddings), vectorStoreID: id, fileID: file.fileID)
            }
        }
        return (id, search)
    }

    @Test(arguments: databases)
    func generationsMoveWithEveryChunkWrittenOrRemoved(database: String) async throws {
        try await withStore(database) { store, project in
            let storeA = "vs_" + UUID().uuidString, storeB = "vs_" + UUID().uuidString
            func generations() async throws -> [String: Int] {
                try await store.read(project: project) { try await $0.vectorGenerations(vectorStoreIDs: [storeA, storeB]) }
            }
            #expect(try await generations().isEmpty)
            try await store.write(project: project) {
                try await $0.insertChunks(Self.chunks(["one", "two"], embeddings: [[1, 0], [0, 1]]), vectorStoreID: storeA, fileID: "file-1")
            }
            let afterInsert = try await generations()
            #expect((afterInsert[storeA] ?? 0) > 0)
            #expect(afterInsert[storeB] == nil)
            try await store.write(project: project) { try await $0.deleteChunks(vectorStoreID: storeA, fileID: "file-1") }
            let afterDelete = try await generations()
            #expect((afterDelete[storeA] ?? 0) > (afterInsert[storeA] ?? 0))
            // Removal by any path counts, e.g. a deleted file's chunks in every store.
            try await store.write(project: project) {
                try await $0.insertChunks(Self.chunks(["three"], embeddings: [[1, 1]]), vectorStoreID: storeB, fileID: "file-2")
            }
            let beforeRaw = try await generations()[storeB] ?? 0
            try await store.write(project: project) { try await $0.database.raw("DELETE FROM chunks WHERE file_id = 'file-2'").run() }
            #expect((try await generations()[storeB] ?? 0) > beforeRaw)
        }
    }

    @Test(arguments: databases)
    func searchRanksByVectorAndSeesNewChunks(database: String) async throws {
        try await withStore(database) { store, project in
            let (id, search) = try await Self.searchableStore(store, project: project, dimensions: 8, files: [
                ("file-a", ["orchards in autumn", "the long flowing water", "a motor that turns"], [Self.axis(0, 8), Self.axis(1, 8), Self.axis(2, 8)]),
            ])
            // No word of the query is in any chunk: only the vectors can find it.
            let first = try await search.search(project: project, vectorStoreIDs: [id], queries: ["river"], maxResults: 1)
            #expect(first.first?.text == "the long flowing water")
            #expect(await search.vectors.loadCount == 1)
            _ = try await search.search(project: project, vectorStoreIDs: [id], queries: ["engine"], maxResults: 1)
            #expect(await search.vectors.loadCount == 1)
            // A chunk written since (by any server: only the database is asked) is found at once.
            try await store.write(project: project) {
                try await $0.insertChunks(Self.chunks(["strings and a bow"], embeddings: [Self.axis(3, 8)]), vectorStoreID: id, fileID: "file-b")
            }
            let second = try await search.search(project: project, vectorStoreIDs: [id], queries: ["violin"], maxResults: 1)
            #expect(second.first?.text == "strings and a bow")
            #expect(await search.vectors.loadCount == 2)
            // And a removed one is gone.
            try await store.write(project: project) { try await $0.deleteChunks(vectorStoreID: id, fileID: "file-b") }
            let third = try await search.search(project: project, vectorStoreIDs: [id], queries: ["violin"], maxResults: 5)
            #expect(!third.contains { $0.text == "strings and a bow" })
        }
    }

    @Test(arguments: databases)
    func emptyStoreAnswersNothingWithoutEmbedding(database: String) async throws {
        try await withStore(database) { store, project in
            let calls = NIOLockedValueBox(0)
            let search = FileSearch(store: store, embedder: Self.axisEmbedder(dimensions: 4, calls: calls), vectors: VectorIndexCache(budgetBytes: 1 << 20))
            let results = try await search.search(project: project, vectorStoreIDs: ["vs_" + UUID().uuidString], queries: ["apple"], maxResults: 5)
            #expect(results.isEmpty)
            #expect(calls.withLockedValue { $0 } == 0)
        }
    }

    @Test(arguments: databases)
    func mixedDimensionsAnswer400AndRunsFallBackToFullText(database: String) async throws {
        try await withStore(database) { store, project in
            let (id, search) = try await Self.searchableStore(store, project: project, dimensions: 4, files: [
                ("file-old", ["apple orchards"], [Self.axis(0, 4)]),
                ("file-new", ["river banks"], [Self.axis(1, 6)]),
            ])
            do {
                _ = try await search.search(project: project, vectorStoreIDs: [id], queries: ["apple"], maxResults: 5)
                Issue.record("a store of mixed dimensions was searched")
            } catch let error as DomainError {
                #expect(APIError(error).status.code == 400)
                #expect(error.code == FileSearch.dimensionsErrorCode)
                #expect(error.message.contains("4 and 6 dimensions"))
            }
            // A run's file_search still finds the passage by its words.
            let call = try await FileSearchTool(search: search).run(callID: "call_1", arguments: #"{"queries": ["river"]}"#, tool: [:],
                                                                   project: project, vectorStoreIDs: [id])
            #expect(call["file_search"]?["results"]?.arrayValue?.first?["file_id"]?.stringValue == "file-new")
        }
    }

    @Test(arguments: databases)
    func queryOfAnotherModelAnswers400(database: String) async throws {
        try await withStore(database) { store, project in
            let id = "vs_" + UUID().uuidString
            try await store.write(project: project) {
                try await $0.insertChunks(Self.chunks(["apple orchards"], embeddings: [Self.axis(0, 6)]), vectorStoreID: id, fileID: "file-a")
            }
            let search = FileSearch(store: store, embedder: Self.axisEmbedder(dimensions: 4), vectors: VectorIndexCache(budgetBytes: 1 << 20))
            await #expect(throws: DomainError.self) {
                _ = try await search.search(project: project, vectorStoreIDs: [id], queries: ["apple"], maxResults: 5)
            }
        }
    }
}
