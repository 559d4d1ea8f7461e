import Foundation
import Hummingbird

/// An error answered as OpenAI does: `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// 400 `invalid_request_error`, naming the offending parameter.
    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// 404 for an unknown id: "No assistant found with id 'X'."
    public static func notFound(_ resource: String, id: String) -> APIError {
        APIError(status: .notFound, message: "No \(resource) found with id '\(id)'.", type: "invalid_request_error")
    }

    public static func unauthorized(_ message: String) -> APIError {
        APIError(status: .unauthorized, message: message, type: "invalid_request_error", code: "invalid_api_key")
    }

    public static func server(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error")
    }

    public static func notImplemented(_ message: String) -> APIError {
        APIError(status: .notImplemented, message: message, type: "invalid_request_error", code: "not_implemented")
    }

    /// A domain error as the API answers it: the one mapping of `DomainError.Kind` to HTTP.
    public init(_ error: DomainError) {
        switch error.kind {
        case .invalidRequest:
            self = .invalidRequest(error.message, param: error.param, code: error.code)
        case .notFound:
            self.init(status: .notFound, message: error.message, type: "invalid_request_error", param: error.param, code: error.code)
        case .server:
            self = .server(error.message)
        case .notImplemented:
            self = .notImplemented(error.message)
        }
    }

    /// The `Error` object of the spec.
    public struct Body: Codable, Sendable {
        public var message: String
        public var type: String
        @Nullable public var param: String?
        @Nullable public var code: String?
    }

    private struct Envelope: Encodable {
        var error: Body
    }

    /// `{"error": {...}}`, its keys in the spec's order.
    public func encoded() throws -> ByteBuffer {
        ByteBuffer(bytes: try OrderedJSONEncoder.encode(Envelope(error: body)))
    }

    public var body: Body {
        Body(message: message, type: type, param: param, code: code)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if status.code == 400 || status.code == 404 || status.code == 401 {
            headers[.init("x-should-retry")!] = "false"
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: try encoded()))
    }
}
