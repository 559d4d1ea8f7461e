import Foundation
import Prometheus
import ServiceLifecycle

/// Everything `assistants-server serve` is configured with (flags and `ASSISTANTS_*` variables).
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var databaseURL = "sqlite://data/assistants.sqlite"
    public var dataDirectory = "data"
    /// Where file bytes live (`--blob-store`, `ASSISTANTS_BLOB_STORE`); nil: the database's default.
    public var blobStore: BlobStoreKind?
    public var apiKeys = ProjectKeys()
    public var allowUnauthenticated = false
    /// The OpenAI-compatible chat-completions upstream, a base URL ending in `/v1`.
    public var upstreamURL: String?
    public var upstreamAPIKey: String?
    /// An optional YAML or JSON file routing model names to upstreams.
    public var modelsConfigPath: String?
    /// Serve the locally installed model (`--local-model`): nil means "when no upstream is configured and it is installed".
    public var localModel: Bool?
    /// Schema-constrained tool calls for every upstream (`on`), none (`off`), or per upstream (nil).
    public var toolConstraint: Bool?
    /// The embedding model for file_search (`ASSISTANTS_EMBEDDING_MODEL`), routed like chat models; none: full text only.
    public var embeddingModel: String?
    /// The memory, in MiB, that the vector indexes of searched stores may hold (`ASSISTANTS_VECTOR_CACHE_MB`).
    public var vectorCacheMB = 512
    /// The code_interpreter sandboxes: time limit, idle timeout, number of sessions.
    public var codeInterpreter = CodeInterpreterService.Settings()
    /// How late (ms) an event loop may run before new runs wait for it to catch up
    /// (`ASSISTANTS_RUN_ADMISSION_LAG_MS`, `RunAdmission`); 0: runs start at once, however busy.
    public var runAdmissionLagMs = 2
    /// How long a run may wait before it expires (the spec's examples: 10 minutes).
    public var runExpirySeconds = 600
    /// Seconds between housekeeping sweeps (`ASSISTANTS_SWEEP_SECONDS`): expired files and vector
    /// stores, code_interpreter sessions of deleted threads.
    public var sweepSeconds = 60
    /// Tries per model call on 429, 5xx and connection errors, and the first backoff delay (doubling).
    public var upstreamAttempts = 3
    public var upstreamRetryDelay: Duration = .milliseconds(500)
    /// Concurrent calls per upstream host for routes without their own `max_connections`
    /// (`ASSISTANTS_UPSTREAM_MAX_CONNECTIONS`); more wait their turn.
    public var upstreamMaxConnections = UpstreamGates.defaultLimit
    /// A PEM file of one or more CA certificates trusted for `https://` upstreams besides the
    /// system's roots (`ASSISTANTS_UPSTREAM_CA_FILE`): a self-hosted model behind an internal CA.
    public var upstreamCAFile: String?
    /// This server among several sharing one PostgreSQL database (`ASSISTANTS_NODE_ID`): nil means
    /// `hostname:port`, which a restarted server keeps, so it resumes its own runs at once.
    public var nodeID: String?
    /// Seconds without a heartbeat after which another server adopts a node's runs (`ASSISTANTS_NODE_TIMEOUT`).
    public var nodeTimeoutSeconds = 15
    /// The largest file upload accepted.
    public var maxUploadBytes = 512 * 1024 * 1024
    /// Connections: idle timeout, cap and slow-request rule (`ASSISTANTS_IDLE_TIMEOUT_SECONDS`,
    /// `ASSISTANTS_MAX_CONNECTIONS`, `ASSISTANTS_SLOW_REQUEST_SECONDS`).
    public var connections = ConnectionLimits()
    /// Where metrics are kept for `GET /metrics` (nil: metrics off, `ASSISTANTS_METRICS=off`). The
    /// process bootstraps swift-metrics with it once, before the application is built.
    public var metricsRegistry: PrometheusCollectorRegistry?
    /// The trace exporter's service when `OTEL_*` variables turn traces on (see `Telemetry`); the
    /// process bootstraps the tracer once, before the application is built. nil: traces off.
    public var tracingService: (any Service)?

    public init() {}

    /// The node id runs are owned by: `nodeID`, else this host's name and the port.
    public var effectiveNodeID: String {
        nodeID ?? "\(ProcessInfo.processInfo.hostName):\(port)"
    }

    /// The blob store in use: the one chosen, else `postgres` on PostgreSQL and `file` on SQLite.
    public var effectiveBlobStore: BlobStoreKind {
        blobStore ?? BlobStoreKind.defaultKind(databaseURL: databaseURL)
    }

    /// Whether `host` only listens on this machine.
    public var isLoopbackHost: Bool {
        ["127.0.0.1", "localhost", "::1"].contains(host) || host.hasPrefix("127.")
    }
}
