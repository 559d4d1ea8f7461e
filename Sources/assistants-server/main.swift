import ArgumentParser
import AssistantsServer
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus

/// The process entry: NIO's event loops become Swift Concurrency's executor before any task runs,
/// so a request, its database statements and its upstream call stay on one thread instead of
/// hopping between NIO's threads and the cooperative pool (a third less CPU per run, measured).
@main
enum Entry {
    static func main() {
        // ASSISTANTS_LOG_FORMAT: text (the default) or json, one object a line.
        let format = ProcessInfo.processInfo.environment["ASSISTANTS_LOG_FORMAT"].flatMap { ServerLogHandler.Format(rawValue: $0.lowercased()) } ?? .text
        LoggingSystem.bootstrap({ label, provider in ServerLogHandler(label: label, format: format, metadataProvider: provider) },
                                metadataProvider: LogContext.metadataProvider)
        // A write to a pipe whose reader died (a sandbox, a child process) fails with EPIPE instead of killing the server.
        signal(SIGPIPE, SIG_IGN)
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        Task {
            await AssistantsServerCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}

/// The `assistants-server` command: `serve` (the default) runs the API server.
struct AssistantsServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assistants-server",
        abstract: "An OpenAI Assistants API server for any OpenAI-compatible model upstream.",
        subcommands: [Serve.self, ConfigCommand.self],
        defaultSubcommand: Serve.self)
}

/// `serve`: a flag wins over the matching `ASSISTANTS_*` environment variable, which wins over the
/// `--config` file, which wins over the default (`Settings`).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the API server.")

    @Option(help: "Address to listen on (ASSISTANTS_HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (ASSISTANTS_PORT, default 8080).") var port: Int?
    @Option(help: "sqlite://PATH or postgres://user:pass@host:port/db (ASSISTANTS_DATABASE_URL, default sqlite://data/assistants.sqlite).")
    var databaseURL: String?
    @Option(help: "Folder for uploaded file bytes (ASSISTANTS_DATA_DIR, default data).") var dataDir: String?
    @Option(help: "Where file bytes live: file (the data folder) or postgres (the database, read by every node) (ASSISTANTS_BLOB_STORE, default postgres on PostgreSQL, else file).")
    var blobStore: String?
    @Option(help: "YAML or JSON file routing model names to upstreams (ASSISTANTS_MODELS_CONFIG).") var modelsConfig: String?
    @Flag(help: "Allow listening on a non-loopback address without API keys.") var allowUnauthenticated = false
    @Flag(inversion: .prefixedNo, help: "Serve the local model installed by scripts/install-local-model.sh (ASSISTANTS_LOCAL_MODEL; default: when no upstream is configured and it is installed).")
    var localModel: Bool?
    @Option(help: "Log level: trace, debug, info, notice, warning, error (ASSISTANTS_LOG_LEVEL, default info).") var logLevel: String?
    @Option(help: "A YAML or JSON file of settings keyed like the variables (ASSISTANTS_PORT: 8080); variables and flags win over it.")
    var config: String?

    func run() async throws {
        let settings = try await Settings(filePath: config)
        var (configuration, logger, metrics) = try resolve(settings)
        for unread in settings.unread() { logger.warning("\(unread)") }
        if metrics {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            configuration.metricsRegistry = registry
        }
        configuration.tracingService = try Telemetry.bootstrapTracing(logger: logger)
        let files = OpenFilesLimit.raise()
        logger.info("open files: soft limit \(files.soft), hard limit \(files.hard); now \(files.now)")
        let app = try await buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }

    /// The configuration the settings describe, and whether metrics are on; nothing is started.
    func resolve(_ settings: Settings) throws -> (ServerConfiguration, Logger, metrics: Bool) {
        func setting(_ flag: String?, _ name: String) -> String? { settings.value(flag, name) }
        var configuration = ServerConfiguration()
        configuration.host = setting(host, "ASSISTANTS_HOST") ?? configuration.host
        if let text = setting(port.map(String.init), "ASSISTANTS_PORT") {
            guard let value = Int(text), (0...65535).contains(value) else { throw ValidationError("invalid port '\(text)'") }
            configuration.port = value
        }
        configuration.databaseURL = setting(databaseURL, "ASSISTANTS_DATABASE_URL") ?? configuration.databaseURL
        configuration.dataDirectory = setting(dataDir, "ASSISTANTS_DATA_DIR") ?? configuration.dataDirectory
        if let text = setting(blobStore, "ASSISTANTS_BLOB_STORE") {
            guard let kind = BlobStoreKind(rawValue: text.lowercased()) else {
                throw ValidationError("invalid ASSISTANTS_BLOB_STORE '\(text)': use file or postgres")
            }
            configuration.blobStore = kind
        }
        configuration.modelsConfigPath = setting(modelsConfig, "ASSISTANTS_MODELS_CONFIG")
        configuration.upstreamURL = setting(nil, "ASSISTANTS_UPSTREAM_URL")
        configuration.upstreamAPIKey = setting(nil, "ASSISTANTS_UPSTREAM_API_KEY")
        configuration.upstreamCAFile = setting(nil, "ASSISTANTS_UPSTREAM_CA_FILE")
        configuration.embeddingModel = setting(nil, "ASSISTANTS_EMBEDDING_MODEL")
        configuration.allowUnauthenticated = allowUnauthenticated
        configuration.localModel = try setting(localModel.map { $0 ? "on" : "off" }, "ASSISTANTS_LOCAL_MODEL").map { try Self.boolean($0, "ASSISTANTS_LOCAL_MODEL") }
        configuration.toolConstraint = try setting(nil, "ASSISTANTS_TOOL_CONSTRAINT").flatMap {
            $0 == "auto" ? nil : try Self.boolean($0, "ASSISTANTS_TOOL_CONSTRAINT")
        }
        if let keys = setting(nil, "ASSISTANTS_API_KEYS") {
            configuration.apiKeys = try ProjectKeys(parsing: keys)
        }
        /// An integer setting within `range`, nil when unset; `hint` follows the value in the error.
        func integer(_ name: String, in range: ClosedRange<Int>, hint: String? = nil) throws -> Int? {
            guard let text = setting(nil, name) else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw ValidationError("invalid \(name) '\(text)'" + (hint.map { " (\($0))" } ?? ""))
            }
            return value
        }
        if let value = try integer("ASSISTANTS_RUN_EXPIRY_SECONDS", in: 1...Int.max) { configuration.runExpirySeconds = value }
        if let value = try integer("ASSISTANTS_SWEEP_SECONDS", in: 1...Int.max) { configuration.sweepSeconds = value }
        configuration.nodeID = setting(nil, "ASSISTANTS_NODE_ID")
        if let value = try integer("ASSISTANTS_NODE_TIMEOUT", in: 3...Int.max, hint: "seconds, at least 3") {
            configuration.nodeTimeoutSeconds = value
        }

        if let value = try integer("ASSISTANTS_CODE_TIMEOUT_SECONDS", in: 1...Int.max) {
            configuration.codeInterpreter.limits.timeout = .seconds(value)
        }
        if let value = try integer("ASSISTANTS_CODE_IDLE_SECONDS", in: 1...Int.max) {
            configuration.codeInterpreter.idleTimeout = .seconds(value)
        }
        if let value = try integer("ASSISTANTS_CODE_MAX_SESSIONS", in: 1...Int.max) { configuration.codeInterpreter.maxSessions = value }
        if let value = try integer("ASSISTANTS_CODE_MEMORY_MB", in: 64...(1 << 24), hint: "MiB, at least 64") {
            configuration.codeInterpreter.limits.memory = value * 1024 * 1024
        }
        if let value = try integer("ASSISTANTS_CODE_DISK_MB", in: 1...(1 << 24), hint: "MiB") {
            configuration.codeInterpreter.limits.diskQuota = value * 1024 * 1024
        }
        if let value = try integer("ASSISTANTS_IDLE_TIMEOUT_SECONDS", in: 1...Int.max, hint: "whole seconds") {
            configuration.connections.idleTimeoutSeconds = value
        }
        if let value = try integer("ASSISTANTS_SLOW_REQUEST_SECONDS", in: 1...Int.max, hint: "whole seconds") {
            configuration.connections.slowRequestSeconds = value
        }
        if let value = try integer("ASSISTANTS_MAX_CONNECTIONS", in: 1...Int.max) { configuration.connections.maxConnections = value }
        if let value = try integer("ASSISTANTS_LISTEN_BACKLOG", in: 1...65_535) { configuration.connections.listenBacklog = value }
        if let value = try integer("ASSISTANTS_VECTOR_CACHE_MB", in: 0...(1 << 24), hint: "MiB") { configuration.vectorCacheMB = value }
        if let value = try integer("ASSISTANTS_UPSTREAM_MAX_CONNECTIONS", in: 1...(1 << 20)) { configuration.upstreamMaxConnections = value }
        if let value = try integer("ASSISTANTS_RUN_ADMISSION_LAG_MS", in: 0...10_000, hint: "ms; 0: off") {
            configuration.runAdmissionLagMs = value
        }

        var logger = Logger(label: "assistants-server")
        let level = setting(logLevel, "ASSISTANTS_LOG_LEVEL") ?? "info"
        guard let parsed = Logger.Level(rawValue: level) else { throw ValidationError("invalid log level '\(level)'") }
        logger.logLevel = parsed
        let metrics = try setting(nil, "ASSISTANTS_METRICS").map({ try Self.boolean($0, "ASSISTANTS_METRICS") }) ?? true
        return (configuration, logger, metrics)
    }

    static func boolean(_ text: String, _ name: String) throws -> Bool {
        switch text.lowercased() {
        case "1", "true", "on", "yes": return true
        case "0", "false", "off", "no": return false
        default: throw ValidationError("invalid \(name) '\(text)': use on or off")
        }
    }
}

/// `config`: prints the effective configuration (same flags, variables and `--config` file as
/// `serve`), one `NAME=value  # source` line per setting, secrets masked; starts nothing.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Print the effective configuration, secrets masked.")

    @OptionGroup var serve: Serve

    func run() async throws {
        let settings = try await Settings(filePath: serve.config)
        let (configuration, _, metrics) = try serve.resolve(settings)
        print(settings.report())
        for unread in settings.unread() { print("# ignored: \(unread)") }
        print("# effective: listen \(configuration.host):\(configuration.port), database \(Settings.masked("ASSISTANTS_DATABASE_URL", configuration.databaseURL)), "
              + "data \(configuration.dataDirectory), blob store \(configuration.effectiveBlobStore.rawValue), upstream \(configuration.upstreamURL.map { Settings.masked("ASSISTANTS_UPSTREAM_URL", $0) } ?? "none"), "
              + "API keys \(configuration.apiKeys.isOpen ? "none (open)" : "set"), metrics \(metrics ? "on" : "off"), "
              + "traces \(Telemetry.tracesRequested(ProcessInfo.processInfo.environment) ? "on (OTEL_*)" : "off")")
    }
}
