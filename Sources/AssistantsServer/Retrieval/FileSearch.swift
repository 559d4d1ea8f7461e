import Foundation

/// One search result: a chunk of a file, its score in 0...1 and the file's attributes.
public struct SearchResult: Sendable {
    public var fileID: String
    public var filename: String
    public var score: Double
    public var attributes: [String: JSONValue]
    public var text: String
    public var vectorStoreID: String
}

/// Ranked retrieval over vector stores: full-text ranking in the database, fused by reciprocal
/// rank with vector similarity when an embedding model is configured; attribute filters,
/// `score_threshold` and `max_num_results` applied last. Serves both the search endpoint and
/// the file_search tool of runs.
struct FileSearch {
    let store: ObjectStore
    let embedder: Embedder?
    /// The in-memory vector index of each store searched lately.
    var vectors = VectorIndexCache(budgetBytes: 512 * 1024 * 1024)

    /// The `code` of the 400 answered when a store's embeddings and the query's differ in length.
    static let dimensionsErrorCode = "embedding_dimensions_mismatch"
    /// Rows of stored embeddings read per query while a store's index loads.
    static let loadPageSize = 4096

    static let stopwords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it", "of", "on", "or", "that",
        "the", "this", "to", "was", "what", "when", "where", "which", "who", "why", "with", "does", "do", "did", "i", "you",
    ]

    /// The search terms of a query: lowercase words, stopwords dropped unless nothing else is left.
    static func terms(_ query: String) -> [String] {
        let words = query.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
        let meaningful = words.filter { !stopwords.contains($0) }
        var seen = Set<String>()
        return (meaningful.isEmpty ? words : meaningful).filter { seen.insert($0).inserted }.prefix(64).map { $0 }
    }

    /// The best `maxResults` results, plus one more when more exist (callers trim it and report `has_more`).
    /// With `semantic` false, only full text ranks (what a run falls back to when the embeddings cannot be used).
    func search(project: String, vectorStoreIDs: [String], queries: [String], maxResults: Int,
                scoreThreshold: Double = 0, filters: JSONValue? = nil, semantic: Bool = true) async throws -> [SearchResult] {
        // Filters apply to file attributes after ranking, so they need a deeper candidate list.
        let candidates = filters == nil ? max(maxResults * 5, 50) : max(maxResults * 50, 2000)
        var lists: [[ChunkHit]] = []
        var bestRank: [Int: Double] = [:]
        for query in queries {
            let hits = try await store.search(project: project) {
                try await $0.searchChunks(terms: Self.terms(query), vectorStoreIDs: vectorStoreIDs, limit: candidates)
            }
            for hit in hits { bestRank[hit.seq] = max(bestRank[hit.seq] ?? 0, hit.rank) }
            lists.append(hits)
        }
        if let embedder, semantic {
            lists += try await vectorLists(project: project, vectorStoreIDs: vectorStoreIDs, queries: queries, embedder: embedder, limit: candidates)
        }
        // Reciprocal rank fusion; with a single list the full-text score itself is the score.
        var fused: [Int: (hit: ChunkHit, score: Double)] = [:]
        for list in lists {
            for (position, hit) in list.enumerated() {
                let contribution = 1.0 / Double(61 + position)
                fused[hit.seq, default: (hit, 0)].score += contribution
            }
        }
        let ranked: [(hit: ChunkHit, score: Double)]
        if lists.count == 1 {
            ranked = lists[0].map { ($0, $0.rank / ($0.rank + 1)) }
        } else {
            let best = Double(lists.count) / 61.0
            ranked = fused.values.map { ($0.hit, min(1, $0.score / best)) }.sorted { $0.score > $1.score || ($0.score == $1.score && $0.hit.seq < $1.hit.seq) }
        }

        var files: [String: (filename: String, attributes: [String: JSONValue])] = [:]
        var results: [SearchResult] = []
        for (hit, score) in ranked where score >= scoreThreshold {
            let key = VectorStoreFile.rowID(vectorStoreID: hit.vectorStoreID, fileID: hit.fileID)
            if files[key] == nil {
                files[key] = try await store.read(project: project) { session in
                    let entry = try await session.get(VectorStoreFile.self, id: key)
                    let file = try await session.get(OpenAIFile.self, id: hit.fileID)
                    return (file?.filename ?? hit.fileID, entry?.attributes ?? [:])
                }
            }
            guard let info = files[key] else { continue }
            if let filters, !AttributeFilter.matches(filters, attributes: info.attributes) { continue }
            results.append(SearchResult(fileID: hit.fileID, filename: info.filename, score: score, attributes: info.attributes,
                                        text: hit.text, vectorStoreID: hit.vectorStoreID))
            if results.count > maxResults { break }
        }
        return results
    }
}

extension FileSearch {
    /// One ranked list per query from the stores' vector indexes (none when no store holds
    /// embeddings, and then the query is not embedded either).
    func vectorLists(project: String, vectorStoreIDs: [String], queries: [String], embedder: Embedder, limit: Int) async throws -> [[ChunkHit]] {
        let generations = try await store.read(project: project) { try await $0.vectorGenerations(vectorStoreIDs: vectorStoreIDs) }
        var indexes: [(id: String, index: VectorIndex)] = []
        for id in Set(vectorStoreIDs).sorted() {
            let index = try await vectors.index(for: .init(project: project, vectorStoreID: id), generation: generations[id] ?? 0) {
                try await loadIndex(project: project, vectorStoreID: id)
            }
            if !index.mixedDimensions.isEmpty {
                throw DomainError.invalidRequest(
                    "The vector store '\(id)' holds embeddings of \(index.mixedDimensions.map(String.init).joined(separator: " and ")) dimensions: "
                        + "its files were embedded by different models. Remove its files and add them again to embed them with the current model.",
                    code: Self.dimensionsErrorCode)
            }
            if index.count > 0 { indexes.append((id, index)) }
        }
        guard !indexes.isEmpty else { return [] }
        var lists: [[ChunkHit]] = []
        for vector in try await embedder.embed(queries) {
            var best: [(seq: Int, score: Float)] = []
            for (id, index) in indexes {
                guard index.dimensions == vector.count else {
                    throw DomainError.invalidRequest(
                        "The vector store '\(id)' holds embeddings of \(index.dimensions) dimensions, but the embedding model '\(embedder.model)' "
                            + "gives \(vector.count): its files were embedded by another model. Remove its files and add them again to embed them with the current model.",
                        code: Self.dimensionsErrorCode)
                }
                best += try await index.nearest(to: vector, k: limit)
            }
            let top = best.sorted { $0.score > $1.score || ($0.score == $1.score && $0.seq < $1.seq) }.prefix(limit)
            let hits = try await store.search(project: project) { try await $0.chunkHits(seqs: top.map(\.seq)) }
            let bySeq = Dictionary(hits.map { ($0.seq, $0) }, uniquingKeysWith: { first, _ in first })
            lists.append(top.compactMap { bySeq[$0.seq] })
        }
        return lists
    }

    /// Reads a store's embeddings page by page into a new index; the decoding runs off the event loop.
    func loadIndex(project: String, vectorStoreID: String) async throws -> VectorIndex {
        let expected = try await store.search(project: project) { try await $0.embeddingCount(vectorStoreID: vectorStoreID) }
        let builder = VectorIndexBuilder(expectedRows: expected)
        var after = 0
        while true {
            let page = try await store.search(project: project) {
                try await $0.embeddingPage(vectorStoreID: vectorStoreID, afterSeq: after, limit: Self.loadPageSize)
            }
            guard let last = page.last else { break }
            try await Offload.run { builder.add(page) }
            after = last.seq
            if page.count < Self.loadPageSize { break }
        }
        return try await Offload.run { builder.finish() }
    }
}

/// The search endpoint's `filters`: a comparison (`eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `in`, `nin`)
/// on one attribute, or an `and` / `or` of filters.
enum AttributeFilter {
    static func matches(_ filter: JSONValue, attributes: [String: JSONValue]) -> Bool {
        guard let type = filter["type"]?.stringValue else { return true }
        switch type {
        case "and":
            return (filter["filters"]?.arrayValue ?? []).allSatisfy { matches($0, attributes: attributes) }
        case "or":
            return (filter["filters"]?.arrayValue ?? []).contains { matches($0, attributes: attributes) }
        default:
            guard let key = filter["key"]?.stringValue, let expected = filter["value"] else { return false }
            let actual = attributes[key]
            switch type {
            case "eq": return actual.map { equal($0, expected) } ?? false
            case "ne": return actual.map { !equal($0, expected) } ?? true
            case "in": return actual.map { value in (expected.arrayValue ?? []).contains { equal(value, $0) } } ?? false
            case "nin": return actual.map { value in !(expected.arrayValue ?? []).contains { equal(value, $0) } } ?? true
            default:
                guard let actual, let order = compare(actual, expected) else { return false }
                switch type {
                case "gt": return order > 0
                case "gte": return order >= 0
                case "lt": return order < 0
                case "lte": return order <= 0
                default: return false
                }
            }
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }

    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        if let x = a.doubleValue, let y = b.doubleValue { return x < y ? -1 : (x > y ? 1 : 0) }
        if let x = a.stringValue, let y = b.stringValue { return x < y ? -1 : (x > y ? 1 : 0) }
        return nil
    }
}
