import Hummingbird
import Logging

/// Answers every failure with an OpenAI-style error body and tags every response with `x-request-id`.
/// Anything that is not an `APIError` is logged and answered 500 without internals.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = IDPrefix.request.makeID()
        var context = context
        context.logger[metadataKey: "request_id"] = .string(requestID)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = try error.response(from: request, context: context)
        } catch let error as HTTPError {
            response = try Self.translate(error, request: request).response(from: request, context: context)
        } catch let error as any HTTPResponseError where error.status.code < 500 {
            response = try APIError(status: error.status, message: "\(error)", type: "invalid_request_error")
                .response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            response = try APIError.server("The server had an error while processing your request. Request id: \(requestID).")
                .response(from: request, context: context)
        }
        response.headers[.init("x-request-id")!] = requestID
        return response
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
