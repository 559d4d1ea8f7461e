import Hummingbird

/// Which wire dialect a request speaks, from its `OpenAI-Beta` header.
public enum APIVersion: Sendable {
    case v1, v2
}

/// The request context: who is calling (their project) and in which dialect.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The tenant every object of this request belongs to.
    public var project: String = ProjectKeys.defaultProject
    public var apiVersion: APIVersion = .v2
    /// The executor of the connection's event loop (`EventLoopAffinityMiddleware`).
    let loopExecutor: EventLoopTaskExecutor?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.loopExecutor = EventLoopTaskExecutor.of(source.channel.eventLoop)
    }

    /// JSON bodies may hold a 256,000-character message; uploads stream and are not bound by this.
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}
