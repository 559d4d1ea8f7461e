import Hummingbird

/// `/v1/vector_stores/{id}/files` and `/file_batches`: attach, list (with `filter`), retrieve,
/// update attributes, detach, read content; batches: create, retrieve, cancel, list files.
struct VectorStoreFilesController {
    let store: ObjectStore
    let library: VectorStoreLibrary

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("vector_stores/:vector_store_id/files", use: create)
        group.get("vector_stores/:vector_store_id/files", use: list)
        group.get("vector_stores/:vector_store_id/files/:file_id", use: retrieve)
        group.post("vector_stores/:vector_store_id/files/:file_id", use: update)
        group.delete("vector_stores/:vector_store_id/files/:file_id", use: delete)
        group.get("vector_stores/:vector_store_id/files/:file_id/content", use: content)
        group.post("vector_stores/:vector_store_id/file_batches", use: createBatch)
        group.get("vector_stores/:vector_store_id/file_batches/:batch_id", use: retrieveBatch)
        group.post("vector_stores/:vector_store_id/file_batches/:batch_id/cancel", use: cancelBatch)
        group.get("vector_stores/:vector_store_id/file_batches/:batch_id/files", use: listBatchFiles)
    }

    static let statuses: Set<String> = ["in_progress", "completed", "failed", "cancelled"]

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let vectorStoreID = try context.parameters.require("vector_store_id")
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["file_id", "attributes", "chunking_strategy"])
        let fileID = try body.required(body.string("file_id"), "file_id")
        let attachment = VectorStoreLibrary.Attachment(
            fileID: fileID, attributes: try body.attributes().value ?? [:], chunking: try body.chunkingStrategy() ?? .auto)
        let (entry, added) = try await store.write(project: context.project) { session in
            guard try await session.exists(.vectorStore, id: vectorStoreID) else { throw APIError.notFound("vector store", id: vectorStoreID) }
            let added = try await library.attach([attachment], to: vectorStoreID, session: session, fileParam: { _ in "file_id" })
            return (try await session.require(VectorStoreFile.self, id: VectorStoreFile.rowID(vectorStoreID: vectorStoreID, fileID: fileID)), added)
        }
        library.startIngestion(added, project: context.project)
        return try .json(encoding: entry)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let vectorStoreID = try context.parameters.require("vector_store_id")
        return try await listFiles(request, context: context, vectorStoreID: vectorStoreID, batchID: nil)
    }

    private func listFiles(_ request: Request, context: APIRequestContext, vectorStoreID: String, batchID: String?) async throws -> Response {
        var page = try ListQuery.page(from: request)
        page.after = page.after.map { VectorStoreFile.rowID(vectorStoreID: vectorStoreID, fileID: $0) }
        page.before = page.before.map { VectorStoreFile.rowID(vectorStoreID: vectorStoreID, fileID: $0) }
        let filter = request.uri.queryParameters.get("filter").flatMap { $0.isEmpty ? nil : $0 }
        if let filter, !Self.statuses.contains(filter) {
            throw APIError.invalidRequest("Invalid value: '\(filter)'. Supported values are: 'cancelled', 'completed', 'failed' and 'in_progress'.",
                                          param: "filter", code: "invalid_value")
        }
        let result = try await store.read(project: context.project) { session in
            guard try await session.exists(.vectorStore, id: vectorStoreID) else { throw APIError.notFound("vector store", id: vectorStoreID) }
            if let batchID, try await !session.exists(.fileBatch, id: batchID, parentID: vectorStoreID) {
                throw APIError.notFound("file batch", id: batchID)
            }
            return try await session.list(.vectorStoreFile, parentID: vectorStoreID, tag: batchID, status: filter, page: page)
        }
        return .json(result.json)
    }

    private func find(_ context: APIRequestContext, session: StoreSession) async throws -> VectorStoreFile {
        let vectorStoreID = try context.parameters.require("vector_store_id")
        let fileID = try context.parameters.require("file_id")
        guard try await session.exists(.vectorStore, id: vectorStoreID) else { throw APIError.notFound("vector store", id: vectorStoreID) }
        guard let entry = try await session.get(VectorStoreFile.self, id: VectorStoreFile.rowID(vectorStoreID: vectorStoreID, fileID: fileID)) else {
            throw APIError.notFound("vector store file", id: fileID)
        }
        return entry
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        try .json(encoding: try await store.read(project: context.project) { try await find(context, session: $0) })
    }

    @Sendable func update(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["attributes"])
        let attributes = try body.attributes()
        if attributes.isAbsent { throw body.missing("attributes") }
        let entry = try await store.write(project: context.project) { session in
            var entry = try await find(context, session: session)
            attributes.apply(to: &entry.attributes)
            try await session.update(entry)
            return entry
        }
        return try .json(encoding: entry)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let entry = try await store.write(project: context.project) { session in
            let entry = try await find(context, session: session)
            try await session.delete(.vectorStoreFile, id: entry.rowID)
            try await session.deleteChunks(vectorStoreID: entry.vector_store_id, fileID: entry.id)
            return entry
        }
        return try .json(encoding: DeletionStatus(id: entry.id, object: "vector_store.file.deleted"))
    }

    /// The file's extracted text, put back together from its chunks.
    @Sendable func content(_ request: Request, context: APIRequestContext) async throws -> Response {
        let chunks = try await store.read(project: context.project) { session in
            let entry = try await find(context, session: session)
            return try await session.chunks(vectorStoreID: entry.vector_store_id, fileID: entry.id)
        }
        var text: [UInt8] = []
        var end = 0
        for chunk in chunks {
            let bytes = Array(chunk.text.utf8)
            let skip = max(0, end - chunk.startOffset)
            if chunk.startOffset > end && !text.isEmpty { text.append(0x20) }
            if skip < bytes.count { text += bytes[skip...] }
            end = max(end, chunk.endOffset)
        }
        let page: JSONValue = [
            "object": "vector_store.file_content.page",
            "data": chunks.isEmpty ? [] : [["type": "text", "text": .string(String(decoding: text, as: UTF8.self))]],
            "has_more": false,
            "next_page": .null,
        ]
        return .json(page.jsonString)
    }

    @Sendable func createBatch(_ request: Request, context: APIRequestContext) async throws -> Response {
        let vectorStoreID = try context.parameters.require("vector_store_id")
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["file_ids", "files", "attributes", "chunking_strategy"])
        let attributes = try body.attributes().value ?? [:]
        let chunking = try body.chunkingStrategy() ?? .auto
        var attachments: [VectorStoreLibrary.Attachment] = []
        let fileIDs = try body.stringArray("file_ids", maxItems: 2000).value
        let files = try body.array("files", maxItems: 2000).value
        if fileIDs?.isEmpty == true || files?.isEmpty == true {
            let key = fileIDs != nil ? "file_ids" : "files"
            throw APIError.invalidRequest(
                "Invalid '\(key)': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                param: key, code: "empty_array")
        }
        switch (fileIDs, files) {
        case (let ids?, nil):
            attachments = ids.map { .init(fileID: $0, attributes: attributes, chunking: chunking) }
        case (nil, let items?):
            for (index, item) in items.enumerated() {
                guard case .object(let fields) = item else { throw body.typeError("files[\(index)]", expected: "an object", got: item) }
                let file = JSONRequest(fields: fields, path: "files[\(index)].")
                try file.rejectUnknown(allowed: ["file_id", "attributes", "chunking_strategy"])
                attachments.append(.init(fileID: try file.required(file.string("file_id"), "file_id"),
                                         attributes: try file.attributes().value ?? attributes,
                                         chunking: try file.chunkingStrategy() ?? chunking))
            }
        case (.some, .some):
            throw APIError.invalidRequest("Provide either 'file_ids' or 'files', not both.", param: "files")
        case (nil, nil):
            throw body.missing("file_ids")
        }
        let (batch, added) = try await store.write(project: context.project) { session in
            guard try await session.exists(.vectorStore, id: vectorStoreID) else { throw APIError.notFound("vector store", id: vectorStoreID) }
            let batch = VectorStoreFileBatch(id: IDPrefix.fileBatch.makeID(), created_at: unixNow(), vector_store_id: vectorStoreID)
            try await session.insert(batch)
            let added = try await library.attach(attachments, to: vectorStoreID, batchID: batch.id, session: session,
                                                 fileParam: { fileIDs != nil ? "file_ids[\($0)]" : "files[\($0)].file_id" })
            return (try await VectorStoreLibrary.current(batch, session: session), added)
        }
        library.startIngestion(added, project: context.project)
        return try .json(encoding: batch)
    }

    private func findBatch(_ context: APIRequestContext, session: StoreSession) async throws -> VectorStoreFileBatch {
        let vectorStoreID = try context.parameters.require("vector_store_id")
        let batchID = try context.parameters.require("batch_id")
        guard try await session.exists(.vectorStore, id: vectorStoreID) else { throw APIError.notFound("vector store", id: vectorStoreID) }
        guard let batch = try await session.get(VectorStoreFileBatch.self, id: batchID), batch.vector_store_id == vectorStoreID else {
            throw APIError.notFound("file batch", id: batchID)
        }
        return batch
    }

    @Sendable func retrieveBatch(_ request: Request, context: APIRequestContext) async throws -> Response {
        let batch = try await store.read(project: context.project) { session in
            try await VectorStoreLibrary.current(findBatch(context, session: session), session: session)
        }
        return try .json(encoding: batch)
    }

    /// Cancels the batch's files still in progress; the finished ones stay.
    @Sendable func cancelBatch(_ request: Request, context: APIRequestContext) async throws -> Response {
        let batch = try await store.write(project: context.project) { session in
            var batch = try await VectorStoreLibrary.current(findBatch(context, session: session), session: session)
            guard batch.status == "in_progress" else {
                throw APIError.invalidRequest("Cannot cancel a batch with status '\(batch.status)'.")
            }
            let pending = try await session.list(.vectorStoreFile, parentID: batch.vector_store_id, tag: batch.id, status: "in_progress",
                                                 page: PageRequest(limit: 10_000)).ids
            for id in pending {
                // locked and read again: ingestion may have finished the file meanwhile
                let rowID = VectorStoreFile.rowID(vectorStoreID: batch.vector_store_id, fileID: id)
                guard var entry = try await session.getForUpdate(VectorStoreFile.self, id: rowID), entry.status == "in_progress" else { continue }
                entry.status = "cancelled"
                try await session.update(entry)
            }
            batch.status = "cancelled"
            try await session.update(batch)
            return try await VectorStoreLibrary.current(batch, session: session)
        }
        return try .json(encoding: batch)
    }

    @Sendable func listBatchFiles(_ request: Request, context: APIRequestContext) async throws -> Response {
        let vectorStoreID = try context.parameters.require("vector_store_id")
        let batchID = try context.parameters.require("batch_id")
        return try await listFiles(request, context: context, vectorStoreID: vectorStoreID, batchID: batchID)
    }
}
