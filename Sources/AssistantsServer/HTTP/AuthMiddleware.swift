import Foundation
import Hummingbird

/// Checks `Authorization: Bearer <key>` on every `/v1` request and sets the caller's project;
/// also picks the wire dialect from `OpenAI-Beta`.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let keys: ProjectKeys

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let beta = request.headers[.init("OpenAI-Beta")!], beta.contains("assistants=v1") {
            context.apiVersion = .v1
        }
        if !keys.isOpen {
            guard let header = request.headers[.authorization] else {
                throw APIError.unauthorized(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            }
            let token = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces) : ""
            guard let project = keys.project(forKey: token) else {
                throw APIError.unauthorized("Incorrect API key provided: \(Self.redact(token)).")
            }
            context.project = project
        }
        return try await next(request, context)
    }

    /// Shows only the ends of a key, as OpenAI does.
    static func redact(_ key: String) -> String {
        guard key.count > 8 else { return String(repeating: "*", count: key.count) }
        return "\(key.prefix(3))\(String(repeating: "*", count: 8))\(key.suffix(4))"
    }
}
