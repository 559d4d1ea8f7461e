import Hummingbird
import Logging
import ServiceLifecycle

/// Builds the whole server: store, run engine and HTTP routes. Tests call it in-process.
public func buildApplication(
    configuration: ServerConfiguration, logger: Logger
) async throws -> some ApplicationProtocol {
    if configuration.apiKeys.isOpen {
        guard configuration.isLoopbackHost || configuration.allowUnauthenticated else {
            throw ConfigurationError(
                "refusing to listen on \(configuration.host) without API keys: set ASSISTANTS_API_KEYS, or pass --allow-unauthenticated")
        }
        logger.warning("ASSISTANTS_API_KEYS is not set: every request is accepted as project '\(ProjectKeys.defaultProject)'")
    }
    let store = try await ObjectStore.open(url: configuration.databaseURL, logger: logger)
    let blobs = try FileBlobs(dataDirectory: configuration.dataDirectory)
    let router = buildRouter(configuration: configuration, store: store, blobs: blobs)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "assistants-server"),
        logger: logger)
    app.addServices(StoreService(store: store))
    return app
}

/// The routes: `/health` open, everything under `/v1` behind the API keys.
func buildRouter(configuration: ServerConfiguration, store: ObjectStore, blobs: FileBlobs) -> Router<APIRequestContext> {
    let router = Router(context: APIRequestContext.self)
    router.add(middleware: ErrorMiddleware())
    router.get("health") { _, _ in Response.json("{\"status\":\"ok\"}") }
    let v1 = router.group("v1").add(middleware: AuthMiddleware(keys: configuration.apiKeys))
    AssistantsController(store: store).addRoutes(to: v1)
    ThreadsController(store: store).addRoutes(to: v1)
    MessagesController(store: store).addRoutes(to: v1)
    FilesController(store: store, blobs: blobs, maxUploadBytes: configuration.maxUploadBytes).addRoutes(to: v1)
    return router
}

/// Closes the database when the server shuts down.
struct StoreService: Service {
    let store: ObjectStore

    func run() async throws {
        try? await gracefulShutdown()
        await store.shutdown()
    }
}
