import HTTPTypes
import Hummingbird
import Logging

/// Answers every failure with an OpenAI-style error body and tags every response with `x-request-id`:
/// the caller's own `X-Request-Id` when it sent a sane one, else Hummingbird's id of the request.
/// Either way it is the one id the request's log lines carry (`hb.request.id`).
/// A `StoreError.unavailable` is answered 503 `server_error` (`database_unavailable`); anything
/// A `DomainError` is answered as `APIError(_:)` maps it; anything else that is not an
/// `APIError` is logged and answered 500 without internals.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID: String
        if let incoming = request.headers[Self.requestIDField], Self.isSaneRequestID(incoming) {
            requestID = incoming
            context.logger[metadataKey: "hb.request.id"] = .string(incoming)
        } else {
            requestID = context.id
        }
        var response: Response
        do {
            // Work the request starts in the background (a run) logs this id too.
            response = try await LogContext.$requestID.withValue(requestID) { try await next(request, context) }
        } catch {
            response = try Self.response(for: error, request: request, context: context, requestID: requestID)
        }
        response.headers[Self.requestIDField] = requestID
        return response
    }

    /// The OpenAI-style error body for what the handler threw. Out of line and synchronous, so
    /// that `handle`'s frame stays small: a streamed response's task keeps it for the stream's life.
    @inline(never)
    static func response(for error: any Error, request: Request, context: Context, requestID: String) throws -> Response {
        switch error {
        case let error as APIError:
            return try error.response(from: request, context: context)
        case let error as DomainError:
            return try APIError(error).response(from: request, context: context)
        case let error as StoreError:
            context.logger.warning("request failed: the database is unavailable", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return try translate(error, requestID: requestID).response(from: request, context: context)
        case let error as HTTPError:
            return try translate(error, request: request).response(from: request, context: context)
        case let error as any HTTPResponseError where error.status.code < 500:
            return try APIError(status: error.status, message: "\(error)", type: "invalid_request_error")
                .response(from: request, context: context)
        default:
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return try APIError.server("The server had an error while processing your request. Request id: \(requestID).")
                .response(from: request, context: context)
        }
    }

    static let requestIDField = HTTPField.Name("x-request-id")!

    /// 1 to 128 visible ASCII characters: anything else is not echoed into headers and logs.
    static func isSaneRequestID(_ text: String) -> Bool {
        (1...128).contains(text.utf8.count) && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// 503 `server_error`: the request may be retried once the database is back (the SDK does so itself).
    static func translate(_ error: StoreError, requestID: String) -> APIError {
        switch error {
        case .unavailable:
            APIError(status: .serviceUnavailable,
                     message: "The server's database is unavailable; retry the request later. Request id: \(requestID).",
                     type: "server_error", code: "database_unavailable")
        }
    }

    static func translate(_ error: HTTPError, request: Request) -> APIError {
        switch error.status {
        case .notFound, .methodNotAllowed:
            return APIError(status: .notFound, message: "Invalid URL (\(request.method.rawValue) \(request.uri.path))", type: "invalid_request_error")
        case .contentTooLarge:
            return .invalidRequest("The request body is too large.")
        default:
            return APIError(status: error.status, message: error.body ?? error.status.reasonPhrase,
                            type: error.status.code >= 500 ? "server_error" : "invalid_request_error")
        }
    }
}
