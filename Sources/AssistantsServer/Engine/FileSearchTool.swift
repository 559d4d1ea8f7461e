import Foundation

/// The file_search tool of a run: offered to the model as a function taking search queries,
/// run by the server over the vector stores of the assistant's and the thread's
/// `tool_resources`, its passages returned to the model numbered so it can cite them
/// (`【3†report.pdf】`), and its citations turned into `file_citation` annotations.
struct FileSearchTool {
    static let name = "file_search"

    static let definition: JSONValue = [
        "type": "function",
        "function": [
            "name": "file_search",
            "description": "Search the documents the user has uploaded. Returns the most relevant passages, each numbered as a source. Quote facts from them and cite each one with its marker, for example 【0†report.pdf】.",
            "parameters": [
                "type": "object",
                "properties": ["queries": ["type": "array", "items": ["type": "string"], "description": "One or more search queries."]],
                "required": ["queries"],
            ],
        ],
    ]

    let search: FileSearch

    /// The queries a model's call asks for: `{"queries": [...]}`, or a lone `query`, or the raw text.
    static func queries(fromArguments arguments: String) -> [String] {
        if let value = try? JSONCoding.decode(JSONValue.self, from: arguments) {
            if let list = value["queries"]?.arrayValue?.compactMap(\.stringValue), !list.isEmpty { return list }
            if let single = value["query"]?.stringValue { return [single] }
            if let text = value.stringValue { return [text] }
        }
        let trimmed = arguments.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? [] : [trimmed]
    }

    /// Runs one call and returns the step's tool-call object (results with their content).
    func run(callID: String, arguments: String, tool: JSONValue, project: String, vectorStoreIDs: [String]) async throws -> JSONValue {
        let maxResults = tool["file_search"]?["max_num_results"]?.intValue ?? 20
        let threshold = tool["file_search"]?["ranking_options"]?["score_threshold"]?.doubleValue ?? 0
        let ranker = tool["file_search"]?["ranking_options"]?["ranker"]?.stringValue ?? "default_2024_08_21"
        let queries = Self.queries(fromArguments: arguments)
        var results: [SearchResult] = []
        if !queries.isEmpty {
            do {
                results = try await search.search(project: project, vectorStoreIDs: vectorStoreIDs, queries: queries,
                                                  maxResults: maxResults, scoreThreshold: threshold)
            } catch let error as DomainError where error.code == FileSearch.dimensionsErrorCode {
                // Embeddings of another model in a store: the run still finds passages by their words
                // (the search endpoint answers this 400, for whoever manages the store).
                results = try await search.search(project: project, vectorStoreIDs: vectorStoreIDs, queries: queries,
                                                  maxResults: maxResults, scoreThreshold: threshold, semantic: false)
            }
        }
        return [
            "id": .string(callID),
            "type": "file_search",
            "file_search": [
                "ranking_options": ["ranker": .string(ranker == "auto" ? "default_2024_08_21" : ranker), "score_threshold": .double(threshold)],
                "results": .array(results.prefix(maxResults).map { result in
                    ["file_id": .string(result.fileID), "file_name": .string(result.filename), "score": .double(result.score),
                     "content": [["type": "text", "text": .string(result.text)]]]
                }),
            ],
        ]
    }

    /// What the model reads back: each result as a numbered source, numbering from `firstSource`.
    static func toolOutput(_ call: JSONValue, firstSource: Int) -> String {
        let results = call["file_search"]?["results"]?.arrayValue ?? []
        if results.isEmpty { return "No passages matched the search in the attached files." }
        return results.enumerated().map { offset, result in
            let text = result["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
            return "【\(firstSource + offset)†\(result["file_name"]?.stringValue ?? "source")】\n\(text)"
        }.joined(separator: "\n\n")
    }

    /// The files of the run's sources in order: source N is `files[N]`.
    static func sources(of steps: [RunStep]) -> [String] {
        steps.filter { $0.type == "tool_calls" }.flatMap { step in
            (step.step_details["tool_calls"]?.arrayValue ?? []).filter { $0["type"]?.stringValue == "file_search" }.flatMap { call in
                (call["file_search"]?["results"]?.arrayValue ?? []).compactMap { $0["file_id"]?.stringValue }
            }
        }
    }

    /// `file_citation` annotations for each `【N†…】` or `【N:M†…】` marker that names a source;
    /// `start_index`/`end_index` count Unicode scalars, as Python strings do.
    static func annotations(in text: String, sources: [String]) -> [JSONValue] {
        guard !sources.isEmpty, text.contains("【") else { return [] }
        let scalars = Array(text.unicodeScalars)
        var annotations: [JSONValue] = []
        var index = 0
        while index < scalars.count {
            guard scalars[index] == "【", let close = scalars[index...].firstIndex(of: "】") else {
                index += 1
                continue
            }
            let inner = String(String.UnicodeScalarView(scalars[(index + 1)..<close]))
            let number = inner.prefix(while: { $0.isNumber })
            if let source = Int(number), source < sources.count, inner.contains("†") || inner.count == number.count {
                annotations.append([
                    "type": "file_citation",
                    "text": .string(String(String.UnicodeScalarView(scalars[index...close]))),
                    "start_index": .int(index),
                    "end_index": .int(close + 1),
                    "file_citation": ["file_id": .string(sources[source])],
                ])
            }
            index = close + 1
        }
        return annotations
    }
}
