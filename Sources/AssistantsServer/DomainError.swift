/// What a domain service (runs, files, vector stores, tools, the store) refuses or fails at, in
/// the API's own terms and with no HTTP in it. The HTTP edge (`ErrorMiddleware`, through
/// `APIError(_:)`) maps each kind to its status and OpenAI's error body, in one place.
public struct DomainError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// The request asks for something the API does not allow (400 `invalid_request_error`).
        case invalidRequest
        /// An id names nothing this project has (404).
        case notFound
        /// The server failed (500 `server_error`).
        case server
        /// A feature this server does not offer (501).
        case notImplemented
    }

    public var kind: Kind
    public var message: String
    /// The request parameter at fault, as the API names it (`tool_resources.file_search.vector_store_ids[0]`).
    public var param: String?
    public var code: String?

    public var description: String { message }

    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> DomainError {
        DomainError(kind: .invalidRequest, message: message, param: param, code: code)
    }

    /// "No assistant found with id 'X'."
    public static func notFound(_ resource: String, id: String) -> DomainError {
        DomainError(kind: .notFound, message: "No \(resource) found with id '\(id)'.")
    }

    public static func server(_ message: String) -> DomainError {
        DomainError(kind: .server, message: message)
    }

    public static func notImplemented(_ message: String) -> DomainError {
        DomainError(kind: .notImplemented, message: message)
    }
}
