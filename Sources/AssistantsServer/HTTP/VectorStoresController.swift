import Hummingbird

/// `/v1/vector_stores`: create (with `file_ids`), list, retrieve, modify, delete, and search.
struct VectorStoresController {
    let store: ObjectStore
    let library: VectorStoreLibrary
    let search: FileSearch

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("vector_stores", use: create)
        group.get("vector_stores", use: list)
        group.get("vector_stores/:vector_store_id", use: retrieve)
        group.post("vector_stores/:vector_store_id", use: modify)
        group.delete("vector_stores/:vector_store_id", use: delete)
        group.post("vector_stores/:vector_store_id/search", use: searchStore)
    }

    /// Validates a `CreateVectorStoreRequest` into the store to create.
    static func parse(_ body: JSONRequest) throws -> NewVectorStore {
        var new = NewVectorStore()
        new.name = try body.string("name", maxLength: 256).value ?? ""
        new.description = try body.string("description", maxLength: 512).value
        new.metadata = try body.metadata().value ?? [:]
        new.expiresAfter = try body.vectorStoreExpiry().value
        new.chunking = try body.chunkingStrategy() ?? .auto
        new.fileIDs = try body.stringArray("file_ids", maxItems: 500).value ?? []
        new.fileIDsParam = body.param("file_ids")
        return new
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["file_ids", "name", "description", "expires_after", "chunking_strategy", "metadata"])
        let new = try Self.parse(body)
        let (vectorStore, added) = try await store.write(project: context.project) { try await library.create(new, session: $0) }
        library.startIngestion(added, project: context.project)
        return try .json(encoding: vectorStore)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let pageRequest = try ListQuery.page(from: request)
        let page = try await store.read(project: context.project) { session in
            var page = try await session.list(.vectorStore, page: pageRequest)
            page.bodies = try await page.bodies.asyncMap { body in
                try JSONCoding.string(try await VectorStoreLibrary.current(JSONCoding.decode(VectorStore.self, from: body), session: session))
            }
            return page
        }
        return .json(page.json)
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("vector_store_id")
        let vectorStore = try await store.read(project: context.project) { session in
            try await VectorStoreLibrary.current(session.require(VectorStore.self, id: id), session: session)
        }
        return try .json(encoding: vectorStore)
    }

    @Sendable func modify(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("vector_store_id")
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["name", "expires_after", "metadata"])
        let vectorStore = try await store.write(project: context.project) { session in
            var vectorStore = try await session.require(VectorStore.self, id: id)
            if let name = try body.string("name", maxLength: 256).value { vectorStore.name = name }
            try body.metadata().apply(to: &vectorStore.metadata)
            switch try body.vectorStoreExpiry() {
            case .value(let expiry):
                vectorStore.expires_after = expiry
                vectorStore.expires_at = (vectorStore.last_active_at ?? unixNow()) + expiry.days * 86_400
            case .null:
                vectorStore.expires_after = nil
                vectorStore.expires_at = nil
            case .absent:
                break
            }
            try await session.update(vectorStore)
            return try await VectorStoreLibrary.current(vectorStore, session: session)
        }
        return try .json(encoding: vectorStore)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("vector_store_id")
        let deleted = try await store.write(project: context.project) { try await Removal.vectorStore(id, session: $0) }
        guard deleted else { throw APIError.notFound("vector store", id: id) }
        return try .json(encoding: DeletionStatus(id: id, object: "vector_store.deleted"))
    }

    @Sendable func searchStore(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("vector_store_id")
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["query", "rewrite_query", "max_num_results", "filters", "ranking_options"])
        let queries: [String]
        switch try body.required(body.raw("query"), "query") {
        case .string(let text): queries = [text]
        case .array:
            queries = try body.stringArray("query", maxItems: 10).value ?? []
        case let other: throw body.typeError("query", expected: "a string or an array of strings", got: other)
        }
        _ = try body.bool("rewrite_query")
        let maxResults = try body.integer("max_num_results", in: 1...50).value ?? 10
        var threshold = 0.0
        if let ranking = try body.object("ranking_options").value {
            try ranking.rejectUnknown(allowed: ["ranker", "score_threshold"])
            _ = try ranking.string("ranker", allowed: ["none", "auto", "default-2024-11-15", "default_2024_08_21"])
            threshold = try ranking.number("score_threshold", in: 0...1).value ?? 0
        }
        let filters = body.raw("filters").value
        if let filters { try AttributeFilter.validate(filters, param: "filters") }
        try await store.write(project: context.project) { session in
            guard try await session.exists(.vectorStore, id: id) else { throw APIError.notFound("vector store", id: id) }
            try await VectorStoreLibrary.touch([id], session: session)
        }
        let results = try await search.search(project: context.project, vectorStoreIDs: [id], queries: queries,
                                              maxResults: maxResults, scoreThreshold: threshold, filters: filters)
        let page: JSONValue = [
            "object": "vector_store.search_results.page",
            "search_query": .array(queries.map { .string($0) }),
            "data": .array(results.prefix(maxResults).map { result in
                ["file_id": .string(result.fileID), "filename": .string(result.filename), "score": .double(result.score),
                 "attributes": .object(result.attributes), "content": [["type": "text", "text": .string(result.text)]]]
            }),
            "has_more": .bool(results.count > maxResults),
            "next_page": .null,
        ]
        return .json(page.jsonString)
    }
}

extension Array {
    /// `map` with an async transform, in order.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
