import AsyncHTTPClient
import Hummingbird
import Logging
import NIOPosix
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
    let blobStore = configuration.effectiveBlobStore
    try blobStore.check(databaseURL: configuration.databaseURL)
    let upstreamTLS = try UpstreamTLS.configuration(caFile: configuration.upstreamCAFile)
    let store = try await ObjectStore.open(url: configuration.databaseURL, logger: logger)
    let blobs = try blobStore.make(driver: store.driver, dataDirectory: configuration.dataDirectory)
    logger.info("file bytes: \(blobStore.rawValue) blob store")
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
    // Local embeddings by default: when installed --with-embeddings, unless the local model is
    // turned off or ASSISTANTS_EMBEDDING_MODEL names another model ("none": full text only).
    var localEmbeddings: LocalModelService?
    if configuration.embeddingModel == nil, configuration.localModel != false,
       let manifest = LocalModelService.installed(), manifest.embedding_model != nil {
        localEmbeddings = try LocalModelService(manifest: manifest, role: .embeddings, logger: logger, threads: 2, startsAfter: localModel)
    }
    if !models.isConfigured {
        logger.warning("no model upstream is configured (ASSISTANTS_UPSTREAM_URL): runs will fail until one is")
    }
    var httpConfiguration = HTTPClient.Configuration()
    // The gates cap each route; the pool must let through all they do, as a request that waits in
    // the pool longer than the connect timeout fails.
    httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit =
        models.httpClientConnectionLimit(defaultLimit: configuration.upstreamMaxConnections)
    httpConfiguration.timeout.connect = .seconds(10)
    // Without an exporter, AsyncHTTPClient would still open a no-op span and set its attributes
    // for every model call (about 25 us of event-loop time per run).
    if configuration.tracingService == nil { httpConfiguration.tracing.tracer = nil }
    if let upstreamTLS, let caFile = configuration.upstreamCAFile {
        // AsyncHTTPClient still offers h2 and http/1.1 by ALPN on top of this configuration.
        httpConfiguration.tlsConfiguration = upstreamTLS.tls
        logger.info("upstream TLS: the system's trust roots and \(upstreamTLS.certificates) CA certificate(s) from \(caFile)")
    }
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
    let modelClients = UpstreamHTTPClients(group: .singleton, shared: http, configuration: httpConfiguration)
    let openFiles = currentOpenFilesLimit()
    let maxConnections = configuration.connections.maxConnections ?? ConnectionLimits.defaultMaxConnections(openFilesLimit: openFiles)
    let upstreamBudget = UpstreamGates.descriptorBudget(openFilesLimit: openFiles, maxConnections: maxConnections)
    logger.info("upstream calls: \(configuration.upstreamMaxConnections) at once per host unless a route sets its own; to http:// upstreams (a connection each) at most \(upstreamBudget) in all (open files \(openFiles)); https:// ones share HTTP/2 connections, bounded by their route only")
    let upstream = model ?? ChatCompletionsClient(
        clients: modelClients, retry: .init(attempts: configuration.upstreamAttempts, baseDelay: configuration.upstreamRetryDelay), logger: logger,
        gates: UpstreamGates(defaultLimit: configuration.upstreamMaxConnections, total: upstreamBudget))
    let client: any ChatModel = localModel.map { LocalModelStartWait(base: upstream, local: $0) } ?? upstream
    let embedder = configuration.embeddingModel.flatMap { model in
        model == "none" ? nil : models.endpoint(for: model).map { Embedder(http: http, endpoint: $0) }
    } ?? localEmbeddings?.embedder(http: http)
    let ingestion = IngestionService(store: store, blobs: blobs, embedder: embedder, logger: logger,
                                     nodeID: configuration.effectiveNodeID, nodeTimeout: configuration.nodeTimeoutSeconds)
    let retrieval = Retrieval(library: VectorStoreLibrary(ingestion: ingestion), search: FileSearch(
        store: store, embedder: embedder, vectors: VectorIndexCache(budgetBytes: configuration.vectorCacheMB * 1024 * 1024)))
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
    let counter = ConnectionCounter()
    logger.info("connections: at most \(maxConnections), idle timeout \(limits.idleTimeoutSeconds) s, slow requests closed after \(limits.slowRequestSeconds) s, listen backlog \(limits.listenBacklog)")
    var app = Application(
        router: router,
        server: LoopPinnedHTTP1Channel.server(configuration: .init(
            additionalChannelHandlers: [ConnectionGuard(limits: limits, maxConnections: maxConnections, counter: counter, logger: logger)],
            idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds)))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "assistants-server",
                             backlog: limits.listenBacklog),
        logger: logger)
    // Shut down in reverse: the server stops taking requests, the engine drains, then the database closes.
    if let tracing = configuration.tracingService { app.addServices(tracing) }  // first in, last out: flushes the others' spans
    app.addServices(ResourcesService(store: store, http: http, modelClients: modelClients), codeService, ingestion, engine, hub,
                    EventLoopLagService(group: MultiThreadedEventLoopGroup.singleton, logger: logger))
    app.addServices(HousekeepingService(store: store, blobs: blobs, codeInterpreter: codeService,
                                        interval: .seconds(configuration.sweepSeconds), logger: logger))
    if let localModel { app.addServices(localModel) }
    if let localEmbeddings { app.addServices(localEmbeddings) }
    return app
}

/// The routes: `/health` open, everything under `/v1` behind the API keys.
/// The file_search parts the routes need: attaching files to stores, and searching them.
struct Retrieval {
    let library: VectorStoreLibrary
    let search: FileSearch
}

func buildRouter(configuration: ServerConfiguration, store: ObjectStore, blobs: any BlobStore, engine: RunEngine,
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
    let admission = RunAdmission(limits: .init(lagLimit: .milliseconds(Int64(configuration.runAdmissionLagMs))))
    RunsController(store: store, runs: Runs(store: store, engine: engine, library: retrieval.library, admission: admission),
                   expirySeconds: configuration.runExpirySeconds, codeInterpreterUnavailable: codeInterpreterUnavailable).addRoutes(to: v1)
    RunStepsController(store: store).addRoutes(to: v1)
    VectorStoresController(store: store, library: retrieval.library, search: retrieval.search).addRoutes(to: v1)
    VectorStoreFilesController(store: store, library: retrieval.library).addRoutes(to: v1)
    V1FilesController(store: store, library: retrieval.library).addRoutes(to: v1)
    PlaygroundController(configuration: configuration).addRoutes(to: router)
    return router
}

/// Closes the database and the upstream HTTP clients when the server shuts down.
struct ResourcesService: Service {
    let store: ObjectStore
    let http: HTTPClient
    let modelClients: UpstreamHTTPClients

    func run() async throws {
        try? await gracefulShutdown()
        await modelClients.shutdownLoopClients()
        try? await http.shutdown()
        await store.shutdown()
    }
}
