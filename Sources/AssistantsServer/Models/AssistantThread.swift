/// A conversation thread (`object: "thread"`). Named so as not to clash with Foundation's `Thread`.
public struct AssistantThread: Codable, Sendable {
    public var id: String
    public var object = "thread"
    public var created_at: Int
    @Nullable public var tool_resources: JSONValue?
    @Nullable public var metadata: [String: String]?

    public init(id: String, created_at: Int) {
        self.id = id
        self.created_at = created_at
        self.tool_resources = .object([:])
        self.metadata = [:]
    }
}
