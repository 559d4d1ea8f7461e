/// An assistant (`object: "assistant"`): a model with instructions and tools.
public struct Assistant: Codable, Sendable {
    public var id: String
    public var object = "assistant"
    public var created_at: Int
    @Nullable public var name: String?
    @Nullable public var description: String?
    public var model: String
    @Nullable public var instructions: String?
    public var tools: [JSONValue]
    @Nullable public var tool_resources: JSONValue?
    @Nullable public var metadata: [String: String]?
    @Nullable public var temperature: Double?
    @Nullable public var top_p: Double?
    @Nullable public var response_format: JSONValue?
    @Nullable public var reasoning_effort: String?

    public init(id: String, created_at: Int, model: String) {
        self.id = id
        self.created_at = created_at
        self.model = model
        self.tools = []
        self.metadata = [:]
        self.temperature = 1
        self.top_p = 1
        self.response_format = "auto"
    }
}

/// The answer to a delete: `{id, object, deleted: true}`.
public struct DeletionStatus: Codable, Sendable {
    public var id: String
    public var object: String
    public var deleted: Bool

    public init(id: String, object: String, deleted: Bool = true) {
        self.id = id
        self.object = object
        self.deleted = deleted
    }
}
