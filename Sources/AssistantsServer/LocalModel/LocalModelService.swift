import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Serves the locally installed model (scripts/install-local-model.sh): runs llama.cpp's
/// `llama-server` as a child process on a free loopback port with tool-call templates enabled,
/// waits for its health, restarts it if it dies, and stops it at shutdown.
public final class LocalModelService: Service, Sendable {
    /// `local-model.json`, written by the install script.
    public struct Manifest: Decodable, Sendable {
        public struct Model: Decodable, Sendable {
            public var name: String
            public var path: String
            public var chat_template_file: String?
        }

        public var llama_server: String
        public var chat_model: Model
    }

    /// Where the install script puts the model: `$ASSISTANTS_MODEL_CACHE`, else `~/.cache/assistants-server`.
    public static var cacheDirectory: String {
        if let cache = ProcessInfo.processInfo.environment["ASSISTANTS_MODEL_CACHE"], !cache.isEmpty { return cache }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".cache/assistants-server")
    }

    /// The installed model, if the install script has run.
    public static func installed() -> Manifest? {
        let path = (cacheDirectory as NSString).appendingPathComponent("local-model.json")
        guard let data = FileManager.default.contents(atPath: path),  // blocking-ok: start-up
              let manifest = try? JSONCoding.decoder.decode(Manifest.self, from: data),
              FileManager.default.isExecutableFile(atPath: manifest.llama_server),
              FileManager.default.fileExists(atPath: manifest.chat_model.path)
        else { return nil }
        return manifest
    }

    let manifest: Manifest
    let port: Int
    let logger: Logger
    let threads: Int
    let contextSize = 8192
    private let process = NIOLockedValueBox<Process?>(nil)

    public init(manifest: Manifest, logger: Logger, threads: Int = 1) throws {
        self.manifest = manifest
        self.logger = logger
        self.threads = threads
        self.port = try Self.freePort()
    }

    /// A tiny model can ramble until its context is full; a reply is cut off here instead.
    static let maxOutputTokens = 512

    /// The endpoint runs use; small models get schema-constrained tool calls.
    public var endpoint: UpstreamEndpoint {
        UpstreamEndpoint(baseURL: "http://127.0.0.1:\(port)/v1", apiKey: nil, upstreamModel: manifest.chat_model.name,
                         contextWindow: contextSize, constrainToolCalls: true, maxOutputTokens: Self.maxOutputTokens, vision: false)
    }

    public func run() async throws {
        logger.info("local model '\(manifest.chat_model.name)' (\(manifest.chat_model.path)) serves model '\(manifest.chat_model.name)' on 127.0.0.1:\(port)")
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    let started = ContinuousClock.now
                    try await self.serveOnce()
                    if ContinuousClock.now - started > .seconds(60) { failures = 0 }
                } catch {
                    self.logger.error("llama-server failed", metadata: ["error": "\(error)"])
                }
                if Task.isCancelled { break }
                failures += 1
                self.logger.warning("llama-server exited; restarting", metadata: ["restarts": "\(failures)"])
                try? await Task.sleep(for: .seconds(min(30, failures * 2)))
            }
        }
        stop()
    }

    /// Runs llama-server until it exits.
    private func serveOnce() async throws {
        let child = Process()
        // setpriv --pdeathsig: llama-server dies with the server, even one killed with SIGKILL.
        child.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        var arguments = ["--pdeathsig", "KILL", "--", manifest.llama_server, "-m", manifest.chat_model.path, "--host", "127.0.0.1", "--port", String(port), "--jinja",
                         "--alias", manifest.chat_model.name, "-t", String(threads), "-c", String(contextSize)]
        if let template = manifest.chat_model.chat_template_file { arguments += ["--chat-template-file", template] }
        child.arguments = arguments
        let log = (Self.cacheDirectory as NSString).appendingPathComponent("logs/llama-server.log")
        try? FileManager.default.createDirectory(atPath: (log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: log, contents: nil)
        let output = FileHandle(forWritingAtPath: log) ?? FileHandle.nullDevice
        child.standardOutput = output
        child.standardError = output
        child.standardInput = FileHandle.nullDevice
        let exited = AsyncStream<Void>.makeStream()
        child.terminationHandler = { _ in exited.continuation.finish() }
        try child.run()
        process.withLockedValue { $0 = child }
        await waitForHealth()
        for await _ in exited.stream {}
        process.withLockedValue { $0 = nil }
    }

    private func waitForHealth() async {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, process.withLockedValue({ $0?.isRunning ?? false }) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/health")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status == .ok {
                logger.info("local model is ready", metadata: ["port": "\(port)"])
                return
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    func stop() {
        process.withLockedValue { child in
            if let child, child.isRunning { child.terminate() }
            child = nil
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
