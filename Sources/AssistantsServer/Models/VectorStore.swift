/// A vector store (`object: "vector_store"`): a searchable collection of chunked files.
/// `status`, `file_counts` and `usage_bytes` are computed from its files whenever it is read.
public struct VectorStore: Codable, Sendable {
    public var id: String
    public var object = "vector_store"
    public var created_at: Int
    public var name: String
    @Nullable public var description: String?
    public var usage_bytes: Int
    public var file_counts: FileCounts
    public var status: String
    @Nullable public var expires_after: ExpirationAfter?
    @Nullable public var expires_at: Int?
    @Nullable public var last_active_at: Int?
    @Nullable public var metadata: [String: String]?

    public init(id: String, created_at: Int) {
        self.id = id
        self.created_at = created_at
        self.name = ""
        self.usage_bytes = 0
        self.file_counts = FileCounts()
        self.status = "completed"
        self.last_active_at = created_at
        self.metadata = [:]
    }

    /// `{anchor: "last_active_at", days}`: the store expires that many days after its last use.
    public struct ExpirationAfter: Codable, Sendable {
        public var anchor: String
        public var days: Int
    }
}

/// How many of a store's (or batch's) files are in each state.
public struct FileCounts: Codable, Sendable, Equatable {
    public var in_progress = 0
    public var completed = 0
    public var failed = 0
    public var cancelled = 0
    public var total = 0

    public init() {}

    mutating func add(status: String, count: Int) {
        switch status {
        case "in_progress": in_progress += count
        case "completed": completed += count
        case "failed": failed += count
        case "cancelled": cancelled += count
        default: break
        }
        total += count
    }
}

/// A file attached to a vector store (`object: "vector_store.file"`); its `id` is the file's id.
public struct VectorStoreFile: Codable, Sendable {
    public var id: String
    public var object = "vector_store.file"
    public var usage_bytes: Int
    public var created_at: Int
    public var vector_store_id: String
    public var status: String
    @Nullable public var last_error: LastError?
    public var chunking_strategy: ChunkingStrategy
    @Nullable public var attributes: [String: JSONValue]?

    public init(id: String, created_at: Int, vector_store_id: String, chunking_strategy: ChunkingStrategy) {
        self.id = id
        self.created_at = created_at
        self.vector_store_id = vector_store_id
        self.usage_bytes = 0
        self.status = "in_progress"
        self.chunking_strategy = chunking_strategy
        self.attributes = [:]
    }

    /// The batch that added it, if any (kept in the row's tag column, not on the wire).
    var batchID: String?

    enum CodingKeys: String, CodingKey {
        case id, object, usage_bytes, created_at, vector_store_id, status, last_error, chunking_strategy, attributes
    }
}

/// `{type: "static", static: {max_chunk_size_tokens, chunk_overlap_tokens}}`; `auto` is 800 / 400.
public struct ChunkingStrategy: Codable, Sendable, Equatable {
    public struct Static: Codable, Sendable, Equatable {
        public var max_chunk_size_tokens: Int
        public var chunk_overlap_tokens: Int
    }

    public var type = "static"
    public var `static`: Static

    public static let auto = ChunkingStrategy(static: Static(max_chunk_size_tokens: 800, chunk_overlap_tokens: 400))
}

/// A batch of files added to a vector store together (`object: "vector_store.files_batch"`).
public struct VectorStoreFileBatch: Codable, Sendable {
    public var id: String
    public var object = "vector_store.files_batch"
    public var created_at: Int
    public var vector_store_id: String
    public var status: String
    public var file_counts: FileCounts

    public init(id: String, created_at: Int, vector_store_id: String) {
        self.id = id
        self.created_at = created_at
        self.vector_store_id = vector_store_id
        self.status = "in_progress"
        self.file_counts = FileCounts()
    }
}
