import Foundation
import Hummingbird

/// Reads the cursor-list query parameters `limit`, `order`, `after`, `before`, with 400s naming the bad one.
enum ListQuery {
    static func page(from request: Request, defaultLimit: Int = 20, maxLimit: Int = 100, allowBefore: Bool = true) throws -> PageRequest {
        let query = request.uri.queryParameters
        var page = PageRequest(limit: defaultLimit)
        if let text = query.get("limit") {
            guard let limit = Int(text) else {
                throw APIError.invalidRequest(
                    "Invalid type for 'limit': expected an integer, but got a string instead.", param: "limit", code: "invalid_type")
            }
            try JSONRequest.check(limit, in: 1...maxLimit, param: "limit")
            page.limit = limit
        }
        if let order = query.get("order") {
            guard order == "asc" || order == "desc" else {
                throw APIError.invalidRequest(
                    "Invalid value: '\(order)'. Supported values are: 'asc' and 'desc'.", param: "order", code: "invalid_value")
            }
            page.ascending = order == "asc"
        }
        page.after = query.get("after").flatMap { $0.isEmpty ? nil : $0 }
        if allowBefore {
            page.before = query.get("before").flatMap { $0.isEmpty ? nil : $0 }
        }
        return page
    }
}

extension Response {
    /// A 200 `application/json` response from JSON text.
    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A 200 `application/json` response encoding `value`.
    static func json(encoding value: some Encodable) throws -> Response {
        .json(try JSONCoding.string(value))
    }
}

extension Request {
    /// Every value of a query parameter, with keys percent-decoded too (`include%5B%5D` is `include[]`).
    func queryValues(_ name: String) -> [String] {
        guard let query = uri.query else { return [] }
        return query.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[0])
            guard key == name else { return nil }
            let value = parts.count > 1 ? String(parts[1]) : ""
            return value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? value
        }
    }
}
