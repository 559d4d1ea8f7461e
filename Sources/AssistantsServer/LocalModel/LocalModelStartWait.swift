/// The engine's chat model with the local model's start awaited: llama-server answers 503 while
/// it loads its model, so a run routed to the local model in the first seconds of the server's
/// life would fail; its call waits until the local model is ready instead, up to
/// `LocalModelService.loadTimeout`. Calls to every other route go straight through.
struct LocalModelStartWait: ChatModel {
    let base: any ChatModel
    /// The local model's endpoint, as its route names it.
    let localBaseURL: String
    /// The local model's name, for the error when it never starts.
    let modelName: String
    /// Waits until the local model answers its health check; whether it did in time.
    let waitUntilReady: @Sendable () async -> Bool

    init(base: any ChatModel, local: LocalModelService) {
        self.init(base: base, localBaseURL: local.endpoint.baseURL, modelName: local.model.name,
                  waitUntilReady: { await local.waitUntilReady(timeout: LocalModelService.loadTimeout) })
    }

    init(base: any ChatModel, localBaseURL: String, modelName: String, waitUntilReady: @escaping @Sendable () async -> Bool) {
        self.base = base
        self.localBaseURL = localBaseURL
        self.modelName = modelName
        self.waitUntilReady = waitUntilReady
    }

    func complete(_ request: ChatRequest, endpoint: UpstreamEndpoint, onDelta: (ChatDelta) async throws -> Void) async throws -> ChatTurn {
        if endpoint.baseURL == localBaseURL, await !waitUntilReady() {
            try Task.checkCancellation()
            throw UpstreamError(code: "server_error", message: "The local model '\(modelName)' did not start within \(LocalModelService.loadTimeout.components.seconds) s (see its log in \(LocalModelService.cacheDirectory)/logs).", retryable: false)
        }
        return try await base.complete(request, endpoint: endpoint, onDelta: onDelta)
    }
}
