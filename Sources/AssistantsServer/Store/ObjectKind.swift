/// The resource tables: one per kind of object the API stores.
public enum ObjectKind: String, Sendable, CaseIterable {
    case assistant = "assistants"
    case thread = "threads"
    case message = "messages"
    case file = "files"
    case run = "runs"
    case runStep = "run_steps"
    case vectorStore = "vector_stores"
    case vectorStoreFile = "vector_store_files"
    case fileBatch = "file_batches"

    /// The name used in "No assistant found with id 'X'." answers.
    public var resourceName: String {
        switch self {
        case .assistant: "assistant"
        case .thread: "thread"
        case .message: "message"
        case .file: "file"
        case .run: "run"
        case .runStep: "run step"
        case .vectorStore: "vector store"
        case .vectorStoreFile: "vector store file"
        case .fileBatch: "file batch"
        }
    }
}

/// An object the store keeps: its JSON is the body, and these columns are what lists filter on.
public protocol StoredObject: Codable, Sendable {
    static var kind: ObjectKind { get }
    var id: String { get }
    /// The row's key; the `id` unless that is not unique in its table (a file in several vector stores).
    var rowID: String { get }
    var created_at: Int { get }
    /// The object it belongs to: the thread of a message or run, the run of a step.
    var parentID: String? { get }
    /// The value the `status` column indexes (runs: to find active ones).
    var indexedStatus: String? { get }
    /// A second filter column: a message's run_id, a file's purpose.
    var tag: String? { get }
}

extension StoredObject {
    public var rowID: String { id }
    public var parentID: String? { nil }
    public var indexedStatus: String? { nil }
    public var tag: String? { nil }
}

extension Assistant: StoredObject {
    public static let kind = ObjectKind.assistant
}

extension AssistantThread: StoredObject {
    public static let kind = ObjectKind.thread
}

extension Message: StoredObject {
    public static let kind = ObjectKind.message
    public var parentID: String? { thread_id }
    public var tag: String? { run_id }
}

extension OpenAIFile: StoredObject {
    public static let kind = ObjectKind.file
    public var tag: String? { purpose }
}

extension Run: StoredObject {
    public static let kind = ObjectKind.run
    public var parentID: String? { thread_id }
    public var indexedStatus: String? { status.rawValue }
}

extension RunStep: StoredObject {
    public static let kind = ObjectKind.runStep
    public var parentID: String? { run_id }
}

extension VectorStore: StoredObject {
    public static let kind = ObjectKind.vectorStore
}

extension VectorStoreFile: StoredObject {
    public static let kind = ObjectKind.vectorStoreFile
    public var rowID: String { Self.rowID(vectorStoreID: vector_store_id, fileID: id) }
    public var parentID: String? { vector_store_id }
    public var indexedStatus: String? { status }
    public var tag: String? { batchID }

    public static func rowID(vectorStoreID: String, fileID: String) -> String {
        vectorStoreID + "/" + fileID
    }
}

extension VectorStoreFileBatch: StoredObject {
    public static let kind = ObjectKind.fileBatch
    public var parentID: String? { vector_store_id }
}
