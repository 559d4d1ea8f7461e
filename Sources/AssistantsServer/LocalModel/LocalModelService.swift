import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Subprocess
import SystemPackage

/// Serves a locally installed model (scripts/install-local-model.sh): runs llama.cpp's
/// `llama-server` as a child process (swift-subprocess) on a free loopback port, waits for its
/// health, restarts it if it dies, and stops it at shutdown. One instance serves the chat model
/// with tool-call templates; another, when the model was installed `--with-embeddings`, serves
/// all-MiniLM-L6-v2's embeddings for file_search.
public final class LocalModelService: Service, Sendable {
    /// `local-model.json`, written by the install script.
    public struct Manifest: Decodable, Sendable {
        public struct Model: Decodable, Sendable {
            public var name: String
            public var path: String
            public var chat_template_file: String?
            /// The length of an embedding model's vectors.
            public var dimensions: Int?
        }

        public var llama_server: String
        public var chat_model: Model
        /// The embedding model, when installed with `--with-embeddings`.
        public var embedding_model: Model?
    }

    /// What one llama-server serves.
    public enum Role: Sendable {
        case chat
        case embeddings
    }

    /// Where the install script puts the model: `$ASSISTANTS_MODEL_CACHE`, else `~/.cache/assistants-server`.
    public static var cacheDirectory: String {
        if let cache = ProcessInfo.processInfo.environment["ASSISTANTS_MODEL_CACHE"], !cache.isEmpty { return cache }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".cache/assistants-server")
    }

    /// The installed model, if the install script has run; its embedding model only if its file is there.
    public static func installed() -> Manifest? {
        let path = (cacheDirectory as NSString).appendingPathComponent("local-model.json")
        guard let data = FileManager.default.contents(atPath: path),  // blocking-ok: start-up
              var manifest = try? JSONCoding.decoder.decode(Manifest.self, from: data),
              FileManager.default.isExecutableFile(atPath: manifest.llama_server),
              FileManager.default.fileExists(atPath: manifest.chat_model.path)
        else { return nil }
        if let embedding = manifest.embedding_model, !FileManager.default.fileExists(atPath: embedding.path) {
            manifest.embedding_model = nil
        }
        return manifest
    }

    let manifest: Manifest
    let model: Manifest.Model
    let role: Role
    let port: Int
    let logger: Logger
    let threads: Int
    let contextSize: Int
    /// Whether llama-server answers its health check now.
    private let ready = NIOLockedValueBox(false)
    /// A server to let load first (the chat model, before the embedding model): on 2 cores two
    /// models loading at once make the first chat wait (llama-server answers 503 while loading).
    let startsAfter: LocalModelService?

    /// The chat model's server.
    public convenience init(manifest: Manifest, logger: Logger, threads: Int = 1) throws {
        try self.init(manifest: manifest, role: .chat, logger: logger, threads: threads)
    }

    /// The server of `role`; `.embeddings` needs the manifest's embedding model.
    public init(manifest: Manifest, role: Role, logger: Logger, threads: Int = 1, startsAfter: LocalModelService? = nil) throws {
        self.manifest = manifest
        self.startsAfter = startsAfter
        self.role = role
        switch role {
        case .chat:
            model = manifest.chat_model
            contextSize = 8192
        case .embeddings:
            guard let embedding = manifest.embedding_model else {
                throw ConfigurationError("the local model was installed without embeddings: run scripts/install-local-model.sh --with-embeddings")
            }
            model = embedding
            // all-MiniLM-L6-v2 has 512 positions; longer inputs are cut by the embedder.
            contextSize = 512
        }
        self.logger = logger
        self.threads = threads
        self.port = try Self.freePort()
    }

    /// How long llama-server may take to load its model before it is taken as failed to start.
    static let loadTimeout: Duration = .seconds(120)

    /// A tiny model can ramble until its context is full; a reply is cut off here instead.
    static let maxOutputTokens = 512

    /// The endpoint runs use; small models get schema-constrained tool calls.
    public var endpoint: UpstreamEndpoint {
        UpstreamEndpoint(baseURL: "http://127.0.0.1:\(port)/v1", apiKey: nil, upstreamModel: model.name,
                         contextWindow: contextSize, constrainToolCalls: true, maxOutputTokens: Self.maxOutputTokens, vision: false)
    }

    /// The embedding model's vectors are computed from this many characters of a text at most:
    /// llama-server refuses an input longer than the model's 512 positions, and all-MiniLM-L6-v2
    /// was trained on the first 256 word pieces (about 1,000 characters of prose) anyway.
    static let embeddingInputCharacters = 1000

    /// Waits until llama-server answers its health check, at most `timeout`; whether it does.
    public func waitUntilReady(timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !ready.withLockedValue({ $0 }) {
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// file_search's embedder on this server (role `.embeddings`): it waits for llama-server to be
    /// ready, and cuts each text to `embeddingInputCharacters` (a quarter of that when the model
    /// still finds it too long: text of symbols or digits is one word piece a character).
    func embedder(http: HTTPClient) -> Embedder {
        let upstream = Embedder(http: http, endpoint: endpoint)
        let name = model.name
        return Embedder(model: name) { texts in
            guard await self.waitUntilReady() else {
                throw UpstreamError(code: "server_error", message: "The local embedding model '\(name)' did not start (see its log in \(Self.cacheDirectory)/logs).", retryable: true)
            }
            do {
                return try await upstream.embed(texts.map { String($0.prefix(Self.embeddingInputCharacters)) })
            } catch {
                return try await upstream.embed(texts.map { String($0.prefix(Self.embeddingInputCharacters / 4)) })
            }
        }
    }

    public func run() async throws {
        logger.info("local \(role == .chat ? "chat" : "embedding") model '\(model.name)' (\(model.path)) is served on 127.0.0.1:\(port)")
        await cancelWhenGracefulShutdown {
            if let first = self.startsAfter { _ = await first.waitUntilReady(timeout: .seconds(120)) }
            var failures = 0
            while !Task.isCancelled {
                do {
                    let started = ContinuousClock.now
                    try await self.serveOnce()
                    if ContinuousClock.now - started > .seconds(60) { failures = 0 }
                } catch is CancellationError {
                    break
                } catch {
                    self.logger.error("llama-server failed", metadata: ["error": "\(error)"])
                }
                self.ready.withLockedValue { $0 = false }
                if Task.isCancelled { break }
                failures += 1
                self.logger.warning("llama-server exited; restarting", metadata: ["restarts": "\(failures)"])
                try? await Task.sleep(for: .seconds(min(30, failures * 2)))
            }
        }
        ready.withLockedValue { $0 = false }
    }

    /// llama-server's arguments for this role.
    var serverArguments: [String] {
        var arguments = ["-m", model.path, "--host", "127.0.0.1", "--port", String(port), "--alias", model.name,
                         "-t", String(threads), "-c", String(contextSize)]
        switch role {
        case .chat:
            arguments += ["--jinja"]
            if let template = model.chat_template_file { arguments += ["--chat-template-file", template] }
        case .embeddings:
            // One slot of the whole context, and a batch that holds a whole input.
            arguments += ["--embedding", "--pooling", "mean", "-np", "1", "-b", String(contextSize), "-ub", String(contextSize)]
        }
        return arguments
    }

    /// Runs llama-server until it exits (or the task is cancelled: then it is stopped).
    private func serveOnce() async throws {
        let log = (Self.cacheDirectory as NSString).appendingPathComponent("logs/llama-server\(role == .embeddings ? "-embeddings" : "").log")
        let output = try await Offload.run { () -> FileDescriptor in
            try FileManager.default.createDirectory(atPath: (log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            return try FileDescriptor.open(FilePath(log), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
        let errors = try output.duplicate()
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        // setpriv --pdeathsig: llama-server dies with the server, even one killed with SIGKILL.
        // The embedding server runs at a lower priority (nice): the event loops and the chat model
        // win over ingestion's embeddings for the CPU.
        let nice = role == .embeddings ? ["/usr/bin/nice", "-n", "5"] : []
        let result = try await Subprocess.run(
            .path("/usr/bin/setpriv"),
            arguments: Arguments(["--pdeathsig", "KILL", "--"] + nice + [manifest.llama_server] + serverArguments),
            environment: .inherit, platformOptions: options,
            input: .none, output: .fileDescriptor(output, closeAfterSpawningProcess: true),
            error: .fileDescriptor(errors, closeAfterSpawningProcess: true)
        ) { execution in
            let pid = execution.processIdentifier.value
            await self.waitForHealth(while: { Self.isRunning(pid) })
            while Self.isRunning(pid) {
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        logger.warning("llama-server ended", metadata: ["status": "\(result.terminationStatus)"])
    }

    /// Whether the child `pid` has not exited yet (it is not reaped here: WNOWAIT).
    static func isRunning(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        // WNOHANG leaves `info` zeroed while the child runs; an exit fills in si_signo (SIGCHLD).
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_signo == 0
    }

    private func waitForHealth(while running: () -> Bool) async {
        let deadline = ContinuousClock.now + Self.loadTimeout
        while ContinuousClock.now < deadline, running(), !Task.isCancelled {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/health")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status == .ok {
                logger.info("local model is ready", metadata: ["port": "\(port)", "model": "\(model.name)"])
                ready.withLockedValue { $0 = true }
                return
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A port nothing listens on now: bind port 0 on loopback and read what the kernel chose.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ConfigurationError("cannot open a socket to find a free port") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw ConfigurationError("cannot find a free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
