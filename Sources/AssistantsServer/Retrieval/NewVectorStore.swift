/// A vector store to create, as a request described it once the HTTP layer validated it: from
/// `POST /v1/vector_stores`, or inline in `tool_resources.file_search.vector_stores`.
struct NewVectorStore: Sendable {
    var name = ""
    var description: String?
    var metadata: [String: String] = [:]
    var expiresAfter: VectorStore.ExpirationAfter?
    var chunking: ChunkingStrategy = .auto
    var fileIDs: [String] = []
    /// How the request named `file_ids`, for an error about one of them.
    var fileIDsParam = "file_ids"

    /// An inline store of `tool_resources` (validated: `file_ids`, `chunking_strategy`, `metadata`).
    init(inline: JSONValue, param: String) {
        fileIDs = inline["file_ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
        metadata = (inline["metadata"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        if inline["chunking_strategy"]?["type"]?.stringValue == "static",
           let size = inline["chunking_strategy"]?["static"]?["max_chunk_size_tokens"]?.intValue,
           let overlap = inline["chunking_strategy"]?["static"]?["chunk_overlap_tokens"]?.intValue {
            chunking = ChunkingStrategy(static: .init(max_chunk_size_tokens: size, chunk_overlap_tokens: overlap))
        }
        fileIDsParam = "\(param).file_ids"
    }

    init() {}
}

extension VectorStoreLibrary {
    /// Stores a new vector store and attaches its files (ingested once the transaction commits).
    func create(_ new: NewVectorStore, session: StoreSession) async throws -> (VectorStore, [VectorStoreFile]) {
        var vectorStore = VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: unixNow())
        vectorStore.name = new.name
        vectorStore.description = new.description
        vectorStore.metadata = new.metadata
        if let expiry = new.expiresAfter {
            vectorStore.expires_after = expiry
            vectorStore.expires_at = vectorStore.created_at + expiry.days * 86_400
        }
        try await session.insert(vectorStore)
        let added = try await attach(
            new.fileIDs.map { .init(fileID: $0, attributes: [:], chunking: new.chunking) }, to: vectorStore.id, session: session,
            fileParam: { "\(new.fileIDsParam)[\($0)]" })
        return (try await VectorStoreLibrary.current(vectorStore, session: session), added)
    }
}
