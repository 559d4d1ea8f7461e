import AsyncHTTPClient
import Hummingbird
import Logging
import ServiceLifecycle

/// Builds the whole server: store, run engine and HTTP routes. Tests call it in-process.
public func buildApplication(
    configuration: ServerConfiguration, logger: Logger
) async throws -> some ApplicationProtocol {
    try await buildApplication(configuration: configuration, logger: logger, model: nil)
}

/// The same, with the model upstream replaced (`model`: a scripted model in the engine's tests).
func buildApplication(
    configuration: ServerConfiguration, logger: Logger, model: (any ChatModel)?
) async throws -> some ApplicationProtocol {
    if configuration.apiKeys.isOpen {
        guard configuration.isLoopbackHost || configuration.allowUnauthenticated else {
            throw ConfigurationError(
                "refusing to listen on \(configuration.host) without API keys: set ASSISTANTS_API_KEYS, or pass --allow-unauthenticated")
        }
        logger.warning("ASSISTANTS_API_KEYS is not set: every request is accepted as project '\(ProjectKeys.defaultProject)'")
    }
    RuntimeDependencies.check(logger: logger)
    let store = try await ObjectStore.open(url: configuration.databaseURL, logger: logger)
    let blobs = try FileBlobs(dataDirectory: configuration.dataDirectory)
    var models = try ModelRouter.load(
        path: configuration.modelsConfigPath, defaultURL: configuration.upstreamURL, defaultAPIKey: configuration.upstreamAPIKey)
    models.constraintOverride = configuration.toolConstraint
    var localModel: LocalModelService?
    if configuration.localModel ?? !models.isConfigured {
        if let manifest = LocalModelService.installed() {
            let service = try LocalModelService(manifest: manifest, logger: logger)
            models.local = (["smollm2", manifest.chat_model.name], service.endpoint)
            localModel = service
            logger.info("the local model serves 'smollm2'\(models.defaultURL == nil ? " and every model name" : "")")
        } else if configuration.localModel == true {
            throw ConfigurationError(
                "--local-model: no local model is installed in \(LocalModelService.cacheDirectory): run scripts/install-local-model.sh")
        }
    }
    if !models.isConfigured {
        logger.warning("no model upstream is configured (ASSISTANTS_UPSTREAM_URL): runs will fail until one is")
    }
    var httpConfiguration = HTTPClient.Configuration()
    httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
    httpConfiguration.timeout.connect = .seconds(10)
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
    let client = model ?? ChatCompletionsClient(
        http: http, retry: .init(attempts: configuration.upstreamAttempts, baseDelay: configuration.upstreamRetryDelay), logger: logger)
    let embedder = configuration.embeddingModel.flatMap { model in
        models.endpoint(for: model).map { Embedder(http: http, endpoint: $0) }
    }
    let ingestion = IngestionService(store: store, blobs: blobs, embedder: embedder, logger: logger)
    let retrieval = Retrieval(library: VectorStoreLibrary(ingestion: ingestion), search: FileSearch(store: store, embedder: embedder))
    let codeService = CodeInterpreterService(dataDirectory: configuration.dataDirectory, settings: configuration.codeInterpreter, logger: logger)
    let hub = RunEventHub()
    let executor = RunExecutor(
        store: store, client: client, router: models, hub: hub, fileSearch: FileSearchTool(search: retrieval.search),
        codeInterpreter: CodeInterpreterTool(service: codeService, store: store, blobs: blobs), blobs: blobs, logger: logger)
    let engine = RunEngine(store: store, executor: executor, hub: hub, logger: logger, nodeID: configuration.effectiveNodeID,
                           nodeTimeout: configuration.nodeTimeoutSeconds)
    let router = buildRouter(configuration: configuration, store: store, blobs: blobs, engine: engine, retrieval: retrieval,
                             codeInterpreterUnavailable: codeService.unavailableReason)
    let limits = configuration.connections
    let maxConnections = limits.maxConnections ?? ConnectionLimits.defaultMaxConnections(openFilesLimit: currentOpenFilesLimit())
    let counter = ConnectionCounter()
    logger.info("connections: at most \(maxConnections), idle timeout \(limits.idleTimeoutSeconds) s, slow requests closed after \(limits.slowRequestSeconds) s")
    var app = Application(
        router: router,
        server: .http1(configuration: .init(
            additionalChannelHandlers: [ConnectionGuard(limits: limits, maxConnections: maxConnections, counter: counter, logger: logger)],
            idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds)))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "assistants-server"),
        logger: logger)
    // Shut down in reverse: the server stops taking requests, the engine drains, then the database closes.
    if let tracing = configuration.tracingService { app.addServices(tracing) }  // first in, last out: flushes the others' spans
    app.addServices(ResourcesService(store: store, http: http), codeService, ingestion, engine)
    app.addServices(HousekeepingService(store: store, blobs: blobs, codeInterpreter: codeService,
                                        interval: .seconds(configuration.sweepSeconds), logger: logger))
    if let localModel { app.addServices(localModel) }
    return app
}

/// The routes: `/health` open, everything under `/v1` behind the API keys.
/// The file_search parts the routes need: attaching files to stores, and searching them.
struct Retrieval {
    let library: VectorStoreLibrary
    let search: FileSearch
}

func buildRouter(configuration: ServerConfiguration, store: ObjectStore, blobs: FileBlobs, engine: RunEngine,
                 retrieval: Retrieval, codeInterpreterUnavailable: String?) -> Router<APIRequestContext> {
    let router = Router(context: APIRequestContext.self)
    if let registry = configuration.metricsRegistry {
        // First, so that it sees the status of every answer, errors included; labels are route patterns.
        router.add(middleware: HTTPMetricsMiddleware())
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
    if configuration.tracingService != nil { router.add(middleware: TracingMiddleware()) }
    router.add(middleware: ErrorMiddleware())
    router.get("health") { _, _ in Response.json("{\"status\":\"ok\"}") }
    router.get("ready") { _, _ in try await Readiness.check(store: store, engine: engine) }
    let v1 = router.group("v1").add(middleware: AuthMiddleware(keys: configuration.apiKeys)).add(middleware: V1DialectMiddleware())
    AssistantsController(store: store, library: retrieval.library).addRoutes(to: v1)
    ThreadsController(store: store, library: retrieval.library).addRoutes(to: v1)
    MessagesController(store: store, library: retrieval.library).addRoutes(to: v1)
    FilesController(store: store, blobs: blobs, maxUploadBytes: configuration.maxUploadBytes).addRoutes(to: v1)
    RunsController(store: store, library: retrieval.library, engine: engine, expirySeconds: configuration.runExpirySeconds,
                   codeInterpreterUnavailable: codeInterpreterUnavailable).addRoutes(to: v1)
    RunStepsController(store: store).addRoutes(to: v1)
    VectorStoresController(store: store, library: retrieval.library, search: retrieval.search).addRoutes(to: v1)
    VectorStoreFilesController(store: store, library: retrieval.library).addRoutes(to: v1)
    V1FilesController(store: store, library: retrieval.library).addRoutes(to: v1)
    PlaygroundController(configuration: configuration).addRoutes(to: router)
    return router
}

/// Closes the database and the upstream HTTP client when the server shuts down.
struct ResourcesService: Service {
    let store: ObjectStore
    let http: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try? await http.shutdown()
        await store.shutdown()
    }
}
