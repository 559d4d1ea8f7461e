/// One model call as the engine asks for it, in no upstream's dialect: the run's settings as the
/// run resolved them. The `ChatModel` that serves it maps each field to its upstream.
struct ChatRequest: Sendable {
    /// Chat messages; a message's `content` is a string or an array of `text` / `image_url` parts.
    var messages: [JSONValue]
    /// Function tools (`{"type": "function", "function": {...}}`), `strict` included as the client set it.
    var tools: [JSONValue] = []
    /// `auto`, `none`, `required` or `{"type": "function", "function": {"name"}}`; nil when no tools.
    var toolChoice: JSONValue?
    /// Whether the model may call several tools at once; nil leaves the upstream's default.
    var parallelToolCalls: Bool?
    var temperature: Double?
    var topP: Double?
    /// `json_object` / `json_schema` formats (never `text` or `auto`, which are the default).
    var responseFormat: JSONValue?
    /// `low`, `medium` or `high`, for reasoning models.
    var reasoningEffort: String?
    /// The most tokens this call may write.
    var maxOutputTokens: Int?
}

/// The model upstream seen from the engine: one chat completion, streamed. The
/// OpenAI-compatible HTTP client is one implementation; tests script another in-process.
protocol ChatModel: Sendable {
    /// Runs one call. `onDelta` sees each fragment in order; the result is the whole turn.
    func complete(_ request: ChatRequest, endpoint: UpstreamEndpoint, onDelta: (ChatDelta) async throws -> Void) async throws -> ChatTurn
}
