import Foundation
import Hummingbird

/// The v1 dialect (`OpenAI-Beta: assistants=v1`, the SDKs of 2023 to April 2024), mapped onto the
/// v2 storage: requests are rewritten to v2 before the handlers see them, and JSON answers are
/// rendered back in v1 shapes. `retrieval` is `file_search`; an assistant's `file_ids` are its
/// code_interpreter files (and, with retrieval, a vector store of them); a message's `file_ids`
/// are attachments for both tools; file_search steps show as `retrieval` calls.
struct V1DialectMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.apiVersion == .v1 else { return try await next(request, context) }
        var request = request
        if request.method == .post, (request.headers[.contentType] ?? "application/json").contains("json") {
            let body = try await JSONRequest.parse(request, context: context)
            let rewritten = try Self.rewrite(.object(body.fields), path: Self.route(request.uri.path))
            request = Request(head: request.head, body: RequestBody(buffer: ByteBuffer(string: rewritten.jsonString)))
        }
        // The handlers see a v2 request.
        var v2Context = context
        v2Context.apiVersion = .v2
        let response = try await next(request, v2Context)
        guard response.headers[.contentType]?.hasPrefix("application/json") == true else { return response }
        let collector = BodyCollector()
        try await response.body.write(collector)
        guard let value = try? JSONText.parse(collector.buffer.readableBytesView) else {
            return response
        }
        var headers = response.headers
        headers[.contentLength] = nil
        return Response(status: response.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: Self.render(value).jsonString)))
    }

    /// The path's segments after `/v1`.
    static func route(_ path: String) -> [Substring] {
        Array(path.split(separator: "/").drop(while: { $0 != "v1" }).dropFirst())
    }

    // MARK: Requests, v1 → v2

    static func rewrite(_ body: JSONValue, path: [Substring]) throws -> JSONValue {
        guard case .object(var fields) = body else { return body }
        switch (path.count, path.first) {
        case (1, "assistants"?), (2, "assistants"?):
            fields = try assistantRequest(fields)
        case (1, "threads"?):
            fields["messages"] = try fields["messages"].map(messagesWithAttachments)
        case (2, "threads"?) where path[1] == "runs":
            fields["tools"] = fields["tools"].map(toolsToV2)
            if case .object(var thread)? = fields["thread"] {
                thread["messages"] = try thread["messages"].map(messagesWithAttachments)
                fields["thread"] = .object(thread)
            }
        case (3, "threads"?) where path[2] == "messages":
            fields = try messageWithAttachments(fields)
        case (3, "threads"?) where path[2] == "runs":
            fields["tools"] = fields["tools"].map(toolsToV2)
            fields["additional_messages"] = try fields["additional_messages"].map(messagesWithAttachments)
        default:
            break
        }
        return .object(fields)
    }

    static func assistantRequest(_ fields: [String: JSONValue]) throws -> [String: JSONValue] {
        var fields = fields
        fields["tools"] = fields["tools"].map(toolsToV2)
        if let fileIDs = fields.removeValue(forKey: "file_ids") {
            guard case .array(let ids) = fileIDs else {
                throw APIError.invalidRequest("Invalid type for 'file_ids': expected an array of strings.", param: "file_ids", code: "invalid_type")
            }
            if ids.count > 20 {
                throw APIError.invalidRequest("Invalid 'file_ids': at most 20 files.", param: "file_ids", code: "array_above_max_length")
            }
            // The files serve both tools, as in v1: code_interpreter's list, and a vector store for retrieval.
            var resources: [String: JSONValue] = ["code_interpreter": ["file_ids": fileIDs]]
            resources["file_search"] = ids.isEmpty ? ["vector_store_ids": []] : ["vector_stores": [["file_ids": fileIDs]]]
            fields["tool_resources"] = .object(resources)
        }
        return fields
    }

    static func toolsToV2(_ tools: JSONValue) -> JSONValue {
        guard case .array(let items) = tools else { return tools }
        return .array(items.map { $0["type"]?.stringValue == "retrieval" ? ["type": "file_search"] : $0 })
    }

    static func messagesWithAttachments(_ messages: JSONValue) throws -> JSONValue {
        guard case .array(let items) = messages else { return messages }
        return .array(try items.map { item in try item.objectValue.map { .object(try messageWithAttachments($0)) } ?? item })
    }

    static func messageWithAttachments(_ message: [String: JSONValue]) throws -> [String: JSONValue] {
        var message = message
        if let ids = message.removeValue(forKey: "file_ids")?.arrayValue, !ids.isEmpty {
            if ids.count > 10 {
                throw APIError.invalidRequest(
                    "Invalid 'file_ids': array too long. Expected an array with maximum length 10, but got an array with length \(ids.count) instead.",
                    param: "file_ids", code: "array_above_max_length")
            }
            message["attachments"] = .array(ids.map { ["file_id": $0, "tools": [["type": "file_search"], ["type": "code_interpreter"]]] })
        }
        return message
    }

    // MARK: Answers, v2 → v1

    static func render(_ value: JSONValue) -> JSONValue {
        guard case .object(var fields) = value else { return value }
        switch fields["object"]?.stringValue {
        case "list":
            fields["data"] = fields["data"].map { data in .array((data.arrayValue ?? []).map(render)) }
        case "assistant":
            fields["file_ids"] = fields["tool_resources"]?["code_interpreter"]?["file_ids"] ?? []
            fields["tools"] = fields["tools"].map(toolsToV1)
            fields["tool_resources"] = nil
        case "thread":
            fields["tool_resources"] = nil
        case "thread.message":
            fields["file_ids"] = .array((fields["attachments"]?.arrayValue ?? []).compactMap { $0["file_id"] })
            fields["attachments"] = nil
            fields["content"] = fields["content"].map(contentToV1)
        case "thread.run":
            fields["tools"] = fields["tools"].map(toolsToV1)
            fields["file_ids"] = []
        case "thread.run.step":
            if case .object(var details)? = fields["step_details"], let calls = details["tool_calls"]?.arrayValue {
                details["tool_calls"] = .array(calls.map { call in
                    call["type"]?.stringValue == "file_search" ? ["id": call["id"] ?? "", "type": "retrieval", "retrieval": [:]] : call
                })
                fields["step_details"] = .object(details)
            }
        default:
            break
        }
        return .object(fields)
    }

    static func toolsToV1(_ tools: JSONValue) -> JSONValue {
        guard case .array(let items) = tools else { return tools }
        return .array(items.map { $0["type"]?.stringValue == "file_search" ? ["type": "retrieval"] : $0 })
    }

    /// v1's `file_citation` has a required `quote`.
    static func contentToV1(_ content: JSONValue) -> JSONValue {
        guard case .array(let parts) = content else { return content }
        return .array(parts.map { part in
            guard case .object(var fields) = part, case .object(var text)? = fields["text"], let annotations = text["annotations"]?.arrayValue else { return part }
            text["annotations"] = .array(annotations.map { annotation in
                guard case .object(var entry) = annotation, case .object(var citation)? = entry["file_citation"] else { return annotation }
                if citation["quote"] == nil { citation["quote"] = "" }
                entry["file_citation"] = .object(citation)
                return .object(entry)
            })
            fields["text"] = .object(text)
            return .object(fields)
        })
    }
}

/// Collects a response body so a middleware can rewrite it.
final class BodyCollector: ResponseBodyWriter {
    var buffer = ByteBuffer()

    func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        self.buffer.writeBuffer(&buffer)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
