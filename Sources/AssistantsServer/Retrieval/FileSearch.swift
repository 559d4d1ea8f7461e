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
    func search(project: String, vectorStoreIDs: [String], queries: [String], maxResults: Int,
                scoreThreshold: Double = 0, filters: JSONValue? = nil) async throws -> [SearchResult] {
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
        if let embedder {
            let embedded = try await store.search(project: project) { try await $0.embeddedChunks(vectorStoreIDs: vectorStoreIDs) }
            if !embedded.isEmpty {
                for vector in try await embedder.embed(queries) {
                    let scored = embedded.map { entry in (entry.hit, zip(entry.vector, vector).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
                    lists.append(scored.sorted { $0.1 > $1.1 }.prefix(candidates).map(\.0))
                }
            }
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

    /// Checks a filter's shape, naming the bad parameter.
    static func validate(_ value: JSONValue, param: String) throws {
        guard case .object(let fields) = value else {
            throw APIError.invalidRequest("Invalid type for '\(param)': expected an object.", param: param, code: "invalid_type")
        }
        let request = JSONRequest(fields: fields, path: param + ".")
        let type = try request.required(request.string("type", allowed: ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "and", "or"]), "type")
        if type == "and" || type == "or" {
            try request.rejectUnknown(allowed: ["type", "filters"])
            let filters = try request.required(request.array("filters"), "filters")
            for (index, filter) in filters.enumerated() { try validate(filter, param: "\(param).filters[\(index)]") }
        } else {
            try request.rejectUnknown(allowed: ["type", "key", "value"])
            _ = try request.required(request.string("key"), "key")
            let value = try request.required(request.raw("value"), "value")
            let scalar: (JSONValue) -> Bool = {
                switch $0 {
                case .string, .int, .double, .bool: true
                default: false
                }
            }
            let valid: Bool
            if case .array(let items) = value {
                valid = items.allSatisfy { scalar($0) && $0.boolValue == nil }
            } else {
                valid = scalar(value)
            }
            guard valid else {
                throw request.typeError("value", expected: "a string, number, boolean or an array of strings and numbers", got: value)
            }
        }
    }
}
