import Foundation
import Yams

/// Where a model is served: an OpenAI-compatible base URL (ending in `/v1`), its key,
/// the model's name there, and its context window in tokens.
public struct UpstreamEndpoint: Sendable, Equatable {
    public var baseURL: String
    public var apiKey: String?
    public var upstreamModel: String
    public var contextWindow: Int
    /// Whether tool calls are asked for as JSON constrained by a schema (small open models).
    public var constrainToolCalls = false
    /// The most tokens one model call may write, when the run sets no tighter limit; a call cut
    /// off by it ends the run `incomplete` (`max_completion_tokens`) rather than running on.
    public var maxOutputTokens: Int? = nil
    /// A reasoning model: sampling settings (`temperature`, `top_p`) are not sent.
    public var reasoning = false
    /// Whether the model takes images; if not, image parts reach it as `[image: NAME]` text.
    public var vision = true
    /// The name the upstream gives the per-call output limit: `max_completion_tokens` for OpenAI
    /// itself and reasoning routes, `max_tokens` elsewhere.
    public var tokenLimitParameter = "max_tokens"
    /// The route's own cap on concurrent calls (`max_connections`); nil: the per-host default.
    public var connectionCap: ConnectionCap? = nil

    public static let defaultContextWindow = 128_000

    /// The route as metrics name it: the upstream's host and port, never a key or a path.
    var metricsRoute: String {
        guard let components = URLComponents(string: baseURL), let host = components.host else { return "unknown" }
        return components.port.map { "\(host):\($0)" } ?? host
    }

    /// Whether `url` is OpenAI's own API, which takes `max_completion_tokens`.
    static func isOpenAI(_ url: String) -> Bool {
        URLComponents(string: url)?.host?.lowercased() == "api.openai.com"
    }
}

/// Routes the model name of a run to its upstream: the models file's routes first (exact names,
/// then the longest matching prefix), else the default upstream (`ASSISTANTS_UPSTREAM_URL`).
public struct ModelRouter: Sendable {
    /// One entry of the models file.
    public struct Route: Codable, Sendable {
        public var name: String?
        public var prefix: String?
        public var upstream_url: String?
        public var api_key: String?
        /// The name of an environment variable holding the key, so files need not hold secrets.
        public var api_key_env: String?
        public var upstream_model: String?
        public var context_window: Int?
        /// Ask this upstream for tool calls as schema-constrained JSON (llama.cpp, vLLM with guided decoding).
        public var constrain_tool_calls: Bool?
        /// The most tokens one call may write (small models that ramble); none by default.
        public var max_output_tokens: Int?
        /// A reasoning model (o-series and alike): no temperature or top_p, `max_completion_tokens`.
        public var reasoning: Bool?
        /// false: the model takes no images (they reach it as `[image: NAME]`); true by default.
        public var vision: Bool?
        /// `max_tokens` or `max_completion_tokens`, overriding the choice made from the route.
        public var token_limit_parameter: String?
        /// The most concurrent calls (each one connection while its reply streams) to this route;
        /// more wait their turn. Default: `ASSISTANTS_UPSTREAM_MAX_CONNECTIONS`, shared per host.
        public var max_connections: Int?

        /// The route as its gate names it.
        var label: String { name.map { "name:\($0)" } ?? "prefix:\(prefix ?? "")" }
    }

    struct File: Codable {
        var models: [Route]
    }

    public var routes: [Route]
    public var defaultURL: String?
    public var defaultAPIKey: String?
    /// The local llama.cpp model, when served: it takes its own names, and every model when nothing else is configured.
    public var local: (names: Set<String>, endpoint: UpstreamEndpoint)?
    /// Overrides every endpoint's constraining (`ASSISTANTS_TOOL_CONSTRAINT=on|off`).
    public var constraintOverride: Bool?

    public init(routes: [Route] = [], defaultURL: String?, defaultAPIKey: String?) {
        self.routes = routes
        self.defaultURL = defaultURL
        self.defaultAPIKey = defaultAPIKey
    }

    /// Reads a models file (YAML or JSON: JSON is YAML too).
    public static func load(path: String?, defaultURL: String?, defaultAPIKey: String?) throws -> ModelRouter {
        var router = ModelRouter(defaultURL: defaultURL, defaultAPIKey: defaultAPIKey)
        guard let path else { return router }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {  // blocking-ok: start-up
            throw ConfigurationError("cannot read the models file \(path)")
        }
        do {
            router.routes = try YAMLDecoder().decode(File.self, from: text).models
        } catch {
            throw ConfigurationError("invalid models file \(path): \(error)")
        }
        for route in router.routes where route.name == nil && route.prefix == nil {
            throw ConfigurationError("models file \(path): every entry needs a 'name' or a 'prefix'")
        }
        for route in router.routes {
            if let parameter = route.token_limit_parameter, !["max_tokens", "max_completion_tokens"].contains(parameter) {
                throw ConfigurationError("models file \(path): token_limit_parameter must be max_tokens or max_completion_tokens, not '\(parameter)'")
            }
            if let limit = route.max_connections, limit < 1 {
                throw ConfigurationError("models file \(path): max_connections of '\(route.label)' must be at least 1, not \(limit)")
            }
        }
        return router
    }

    /// The HTTP client's per-host connection limit: never below what the gates let through
    /// (`defaultLimit` per host, plus every capped route, which may share a host).
    public func httpClientConnectionLimit(defaultLimit: Int) -> Int {
        routes.reduce(defaultLimit) { total, route in total + min(route.max_connections ?? 0, 1 << 20) }
    }

    /// Whether any upstream at all is configured.
    public var isConfigured: Bool {
        defaultURL != nil || routes.contains { $0.upstream_url != nil } || local != nil
    }

    public func endpoint(for model: String) -> UpstreamEndpoint? {
        guard var endpoint = routedEndpoint(for: model) else { return nil }
        if let constraintOverride { endpoint.constrainToolCalls = constraintOverride }
        return endpoint
    }

    private func routedEndpoint(for model: String) -> UpstreamEndpoint? {
        if let local, local.names.contains(model) { return local.endpoint }
        let route = routes.first { $0.name == model }
            ?? routes.filter { $0.prefix.map(model.hasPrefix) ?? false }.max { ($0.prefix?.count ?? 0) < ($1.prefix?.count ?? 0) }
        guard let baseURL = route?.upstream_url ?? defaultURL else { return local?.endpoint }
        let key = route?.api_key
            ?? route?.api_key_env.flatMap { ProcessInfo.processInfo.environment[$0] }
            ?? (route?.upstream_url == nil ? defaultAPIKey : nil)
        let reasoning = route?.reasoning ?? false
        return UpstreamEndpoint(
            baseURL: baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL,
            apiKey: key,
            upstreamModel: route?.upstream_model ?? model,
            contextWindow: route?.context_window ?? UpstreamEndpoint.defaultContextWindow,
            constrainToolCalls: route?.constrain_tool_calls ?? false,
            maxOutputTokens: route?.max_output_tokens,
            reasoning: reasoning,
            vision: route?.vision ?? true,
            tokenLimitParameter: route?.token_limit_parameter
                ?? (reasoning || UpstreamEndpoint.isOpenAI(baseURL) ? "max_completion_tokens" : "max_tokens"),
            connectionCap: route.flatMap { route in route.max_connections.map { ConnectionCap(route: route.label, max: $0) } })
    }
}
