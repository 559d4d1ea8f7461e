import Foundation
import NIOConcurrencyHelpers

/// A route's own cap on concurrent upstream calls (`max_connections` in the models file).
public struct ConnectionCap: Sendable, Equatable {
    /// The route it belongs to (`name:gpt-4o`, `prefix:llama`): each capped route has its own count.
    public var route: String
    public var max: Int
}

/// The gates of every upstream: a route with its own `max_connections` has one of its own, every
/// other route shares one per upstream host and port, of `defaultLimit`
/// (`ASSISTANTS_UPSTREAM_MAX_CONNECTIONS`). A call past its gate's limit waits, in order, for as
/// long as its run goes on, rather than in the HTTP client's pool, which fails a request that
/// waits longer than the connect timeout. Past the routes' gates, `total` bounds the calls to
/// plain `http://` upstreams together by the descriptors left beside the client connections (each
/// such call holds an HTTP/1.1 connection), so that a call waits for one rather than failing to
/// open a socket (EMFILE). Calls to `https://` upstreams skip it: the HTTP client asks them for
/// HTTP/2 (ALPN) and multiplexes its calls over at most one connection per event loop, so they
/// hold a few descriptors however many there are; their route's gate is their only bound.
final class UpstreamGates: Sendable {
    static let defaultLimit = 256

    let defaultLimit: Int
    /// All calls to plain `http://` upstreams together; nil: unbounded.
    let total: PermitGate?
    private let gates = NIOLockedValueBox([String: PermitGate]())

    init(defaultLimit: Int = UpstreamGates.defaultLimit, total: Int? = nil) {
        self.defaultLimit = max(1, defaultLimit)
        self.total = total.map { PermitGate(limit: $0) }
    }

    /// The plain-HTTP upstream connections the descriptors allow: the open-files limit less the
    /// client connections (`maxConnections`) and a reserve for the database, files, processes and
    /// the few HTTP/2 connections of `https://` upstreams.
    static func descriptorBudget(openFilesLimit: Int, maxConnections: Int) -> Int {
        max(16, openFilesLimit - maxConnections - 256)
    }

    /// Runs `body` holding a permit of the endpoint's gate, then, for a call that holds a
    /// connection of its own (`callHoldsAConnection`), one of `total`.
    func withPermit<T>(for endpoint: UpstreamEndpoint, _ body: () async throws -> T) async throws -> T {
        try await gate(for: endpoint).withPermit {
            guard let total, Self.callHoldsAConnection(endpoint) else { return try await body() }
            return try await total.withPermit(body)
        }
    }

    /// Whether each call to `endpoint` holds a connection (a descriptor) of its own: a plain
    /// `http://` upstream, spoken to in HTTP/1.1 (the HTTP client has no cleartext HTTP/2). Not an
    /// `https://` one, which multiplexes calls over HTTP/2 when it offers it, as hosted APIs do.
    static func callHoldsAConnection(_ endpoint: UpstreamEndpoint) -> Bool {
        URLComponents(string: endpoint.baseURL)?.scheme?.lowercased() != "https"
    }

    func gate(for endpoint: UpstreamEndpoint) -> PermitGate {
        let key: String, limit: Int
        if let cap = endpoint.connectionCap {
            (key, limit) = ("route \(cap.route)", cap.max)
        } else {
            (key, limit) = ("host \(endpoint.metricsRoute)", defaultLimit)
        }
        return gates.withLockedValue { gates in
            if let gate = gates[key] { return gate }
            let gate = PermitGate(limit: limit)
            gates[key] = gate
            return gate
        }
    }
}
