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

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// JSON bodies may hold a 256,000-character message; uploads stream and are not bound by this.
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}
