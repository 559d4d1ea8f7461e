import AsyncHTTPClient
import Foundation
import NIOCore

/// Computes embeddings through an OpenAI-compatible `POST /embeddings`, when an embedding model
/// is configured (`ASSISTANTS_EMBEDDING_MODEL`); vectors are then searched beside full text.
/// Tests replace the upstream with a function of their own (`init(model:batch:)`).
public struct Embedder: Sendable {
    /// The model's name, for messages.
    let model: String
    let batchSize = 64
    private let embedBatch: @Sendable ([String]) async throws -> [[Float]]

    init(http: HTTPClient, endpoint: UpstreamEndpoint) {
        model = endpoint.upstreamModel
        embedBatch = { try await Self.embedBatch($0, http: http, endpoint: endpoint) }
    }

    /// An embedder computing each batch with `batch` (its vectors are normalized here).
    init(model: String, batch: @escaping @Sendable ([String]) async throws -> [[Float]]) {
        self.model = model
        embedBatch = { try await batch($0).map(Self.normalized) }
    }

    public func embed(_ texts: [String]) async throws -> [[Float]] {
        var vectors: [[Float]] = []
        var start = 0
        while start < texts.count {
            let batch = Array(texts[start..<min(start + batchSize, texts.count)])
            vectors += try await embedBatch(batch)
            start += batchSize
        }
        return vectors
    }

    private static func embedBatch(_ texts: [String], http: HTTPClient, endpoint: UpstreamEndpoint) async throws -> [[Float]] {
        struct Response: Decodable {
            struct Item: Decodable {
                var index: Int?
                var embedding: [Float]
            }
            var data: [Item]
        }
        var request = HTTPClientRequest(url: endpoint.baseURL + "/embeddings")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let key = endpoint.apiKey, !key.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        let body: JSONValue = ["model": .string(endpoint.upstreamModel), "input": .array(texts.map { .string($0) })]
        request.body = .bytes(ByteBuffer(bytes: JSONText.bytes(body)))
        let response = try await http.execute(request, timeout: .seconds(120))
        let data = try await response.body.collect(upTo: 256 * 1024 * 1024)
        guard response.status == .ok else {
            throw UpstreamError(code: "server_error", message: "The embedding upstream answered \(response.status.code): \(String(buffer: data).prefix(300))", retryable: false)
        }
        let decoded = try JSONCoding.decoder.decode(Response.self, from: Data(data.readableBytesView))
        let ordered = decoded.data.enumerated().sorted { ($0.element.index ?? $0.offset) < ($1.element.index ?? $1.offset) }
        return ordered.map { Self.normalized($0.element.embedding) }
    }

    static func normalized(_ vector: [Float]) -> [Float] {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }
}
