import Foundation
import Hummingbird

/// `/v1/files`: multipart upload, list, retrieve, delete and download of the exact bytes.
struct FilesController {
    let store: ObjectStore
    let blobs: any BlobStore
    let maxUploadBytes: Int

    static let purposes: Set<String> = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("files", use: create)
        group.get("files", use: list)
        group.get("files/:file_id", use: retrieve)
        group.delete("files/:file_id", use: delete)
        group.get("files/:file_id/content", use: content)
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let temporary = blobs.temporaryPath()
        do {
            let upload = try await MultipartUpload.read(request, to: temporary, maxBytes: maxUploadBytes)
            let form = JSONRequest(fields: upload.fields.mapValues { .string($0) })
            guard upload.sawFile else { throw form.missing("file") }
            try form.rejectUnknown(allowed: ["file", "purpose", "expires_after[anchor]", "expires_after[seconds]"])
            let purpose = try form.required(form.string("purpose", allowed: Self.purposes), "purpose")
            let now = unixNow()
            var file = OpenAIFile(id: IDPrefix.file.makeID(), bytes: upload.byteCount, created_at: now,
                                  filename: OpenAIFile.cleanFilename(upload.filename), purpose: purpose)
            if let anchor = upload.fields["expires_after[anchor]"], anchor != "created_at" {
                throw APIError.invalidRequest("Invalid value: '\(anchor)'. Supported values are: 'created_at'.", param: "expires_after[anchor]")
            }
            if let text = upload.fields["expires_after[seconds]"] {
                guard let seconds = Int(text) else {
                    throw APIError.invalidRequest("Invalid type for 'expires_after[seconds]': expected an integer.", param: "expires_after[seconds]")
                }
                try JSONRequest.check(seconds, in: 3600...2_592_000, param: "expires_after[seconds]")
                file.expires_at = now + seconds
            }
            try await blobs.put(fileID: file.id, movingFileAt: temporary)
            do {
                try await store.write(project: context.project) { try await $0.insert(file) }
            } catch {
                try? await blobs.remove(fileID: file.id)
                throw error
            }
            return try .json(encoding: file)
        } catch {
            await blobs.removeTemporary(temporary)
            throw error
        }
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let page = try ListQuery.page(from: request, defaultLimit: 10_000, maxLimit: 10_000, allowBefore: false)
        let purpose = request.uri.queryParameters.get("purpose").flatMap { $0.isEmpty ? nil : $0 }
        return .json(try await store.read(project: context.project) { try await $0.list(.file, tag: purpose, page: page) }.json)
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("file_id")
        guard let body = try await store.read(project: context.project, { try await $0.body(.file, id: id) }) else {
            throw APIError.notFound("file", id: id)
        }
        return .json(body)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("file_id")
        let deleted = try await store.write(project: context.project) { try await Removal.file(id, session: $0) }
        guard deleted else { throw APIError.notFound("file", id: id) }
        // The file is gone from the API; bytes left behind by a failure here are never served.
        do {
            try await blobs.remove(fileID: id)
        } catch {
            context.logger.warning("could not remove the bytes of a deleted file", metadata: ["file_id": "\(id)", "error": "\(error)"])
        }
        return try .json(encoding: DeletionStatus(id: id, object: "file"))
    }

    @Sendable func content(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("file_id")
        guard let file = try await store.read(project: context.project, { try await $0.get(OpenAIFile.self, id: id) }) else {
            throw APIError.notFound("file", id: id)
        }
        guard let content = try await blobs.read(fileID: file.id) else {
            throw APIError.server("The bytes of file '\(id)' are missing from storage.")
        }
        // Streamed a chunk at a time, as the client reads it.
        let body = ResponseBody(contentLength: content.size) { writer in
            for try await chunk in content {
                try await writer.write(chunk)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "application/octet-stream", .contentLength: String(content.size),
                      .contentDisposition: "attachment; filename=\"\(file.filename.replacingOccurrences(of: "\"", with: ""))\""],
            body: body)
    }
}
