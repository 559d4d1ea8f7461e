/// A message in a thread (`object: "thread.message"`), written by the user or by a run.
public struct Message: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case in_progress, incomplete, completed
    }

    public var id: String
    public var object = "thread.message"
    public var created_at: Int
    public var thread_id: String
    public var status: Status
    @Nullable public var incomplete_details: IncompleteDetails?
    @Nullable public var completed_at: Int?
    @Nullable public var incomplete_at: Int?
    public var role: String
    public var content: [JSONValue]
    @Nullable public var assistant_id: String?
    @Nullable public var run_id: String?
    @Nullable public var attachments: [JSONValue]?
    @Nullable public var metadata: [String: String]?

    public init(id: String, created_at: Int, thread_id: String, role: String, content: [JSONValue]) {
        self.id = id
        self.created_at = created_at
        self.thread_id = thread_id
        self.status = .completed
        self.completed_at = created_at
        self.role = role
        self.content = content
        self.attachments = []
        self.metadata = [:]
    }

    /// The text of the message's text parts, joined: what a model reads.
    public var plainText: String {
        content.compactMap { part -> String? in
            guard part["type"]?.stringValue == "text" else { return nil }
            return part["text"]?["value"]?.stringValue
        }.joined(separator: "\n")
    }

    /// A `text` content part as stored: `{type: "text", text: {value, annotations: []}}`.
    public static func textPart(_ value: String, annotations: [JSONValue] = []) -> JSONValue {
        ["type": "text", "text": ["value": .string(value), "annotations": .array(annotations)]]
    }
}

/// Why a message or run ended `incomplete`: `{reason}`.
public struct IncompleteDetails: Codable, Sendable {
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }
}
