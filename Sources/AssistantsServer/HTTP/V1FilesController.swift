import Hummingbird

/// The v1-only file endpoints: `/v1/assistants/{id}/files` (an assistant's files) and
/// `/v1/threads/{tid}/messages/{mid}/files` (a message's files, read-only), over v2 storage.
struct V1FilesController {
    let store: ObjectStore
    let library: VectorStoreLibrary

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get("assistants/:assistant_id/files", use: listAssistantFiles)
        group.post("assistants/:assistant_id/files", use: createAssistantFile)
        group.get("assistants/:assistant_id/files/:file_id", use: retrieveAssistantFile)
        group.delete("assistants/:assistant_id/files/:file_id", use: deleteAssistantFile)
        group.get("threads/:thread_id/messages/:message_id/files", use: listMessageFiles)
        group.get("threads/:thread_id/messages/:message_id/files/:file_id", use: retrieveMessageFile)
    }

    static func fileIDs(of assistant: Assistant) -> [String] {
        assistant.tool_resources?["code_interpreter"]?["file_ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    static func setFileIDs(_ ids: [String], on assistant: inout Assistant) {
        var resources = assistant.tool_resources?.objectValue ?? [:]
        var code = resources["code_interpreter"]?.objectValue ?? [:]
        code["file_ids"] = .array(ids.map { .string($0) })
        resources["code_interpreter"] = .object(code)
        assistant.tool_resources = .object(resources)
    }

    private func entry(_ fileID: String, owner: String, ownerKey: String, object: String, session: StoreSession) async throws -> JSONValue {
        let file = try await session.get(OpenAIFile.self, id: fileID)
        return ["id": .string(fileID), "object": .string(object), "created_at": .int(file?.created_at ?? 0), .init(ownerKey): .string(owner)]
    }

    private func list(_ entries: [JSONValue], request: Request) throws -> Response {
        let page = try ListQuery.page(from: request)
        var items = page.ascending ? entries : entries.reversed()
        if let after = page.after, let index = items.firstIndex(where: { $0["id"]?.stringValue == after }) {
            items = Array(items[(index + 1)...])
        }
        let shown = Array(items.prefix(page.limit))
        let list: JSONValue = ["object": "list", "data": .array(shown), "first_id": shown.first?["id"] ?? .null,
                               "last_id": shown.last?["id"] ?? .null, "has_more": .bool(items.count > shown.count)]
        return .json(list.jsonString)
    }

    @Sendable func listAssistantFiles(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("assistant_id")
        let entries = try await store.read(project: context.project) { session in
            let assistant = try await session.require(Assistant.self, id: id)
            return try await Self.fileIDs(of: assistant).asyncMap {
                try await entry($0, owner: id, ownerKey: "assistant_id", object: "assistant.file", session: session)
            }
        }
        return try list(entries, request: request)
    }

    /// Adds a file to the assistant: its code_interpreter files, and its retrieval store if it has one.
    @Sendable func createAssistantFile(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("assistant_id")
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["file_id"])
        let fileID = try body.required(body.string("file_id"), "file_id")
        let (result, added) = try await store.write(project: context.project) { session -> (JSONValue, [VectorStoreFile]) in
            var assistant = try await session.require(Assistant.self, id: id)
            guard try await session.exists(.file, id: fileID) else { throw APIError.invalidRequest("No file found with id '\(fileID)'.", param: "file_id") }
            var ids = Self.fileIDs(of: assistant)
            var added: [VectorStoreFile] = []
            if !ids.contains(fileID) {
                guard ids.count < 20 else { throw APIError.invalidRequest("An assistant can have at most 20 files.", param: "file_id") }
                ids.append(fileID)
                Self.setFileIDs(ids, on: &assistant)
                var storeID = assistant.tool_resources?["file_search"]?["vector_store_ids"]?.arrayValue?.first?.stringValue
                if storeID == nil, assistant.tools.contains(where: { $0["type"]?.stringValue == "file_search" }) {
                    // A retrieval assistant without a store yet: its files get one.
                    let vectorStore = VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: unixNow())
                    try await session.insert(vectorStore)
                    var resources = assistant.tool_resources?.objectValue ?? [:]
                    resources["file_search"] = ["vector_store_ids": [.string(vectorStore.id)]]
                    assistant.tool_resources = .object(resources)
                    storeID = vectorStore.id
                }
                if let storeID {
                    added = try await library.attach([.init(fileID: fileID, attributes: [:], chunking: .auto)], to: storeID,
                                                     session: session, fileParam: { _ in "file_id" })
                }
                try await session.update(assistant)
            }
            return (try await entry(fileID, owner: id, ownerKey: "assistant_id", object: "assistant.file", session: session), added)
        }
        library.startIngestion(added, project: context.project)
        return .json(result.jsonString)
    }

    @Sendable func retrieveAssistantFile(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("assistant_id")
        let fileID = try context.parameters.require("file_id")
        let result = try await store.read(project: context.project) { session in
            let assistant = try await session.require(Assistant.self, id: id)
            guard Self.fileIDs(of: assistant).contains(fileID) else { throw APIError.notFound("assistant file", id: fileID) }
            return try await entry(fileID, owner: id, ownerKey: "assistant_id", object: "assistant.file", session: session)
        }
        return .json(result.jsonString)
    }

    @Sendable func deleteAssistantFile(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("assistant_id")
        let fileID = try context.parameters.require("file_id")
        try await store.write(project: context.project) { session in
            var assistant = try await session.require(Assistant.self, id: id)
            var ids = Self.fileIDs(of: assistant)
            guard let index = ids.firstIndex(of: fileID) else { throw APIError.notFound("assistant file", id: fileID) }
            ids.remove(at: index)
            Self.setFileIDs(ids, on: &assistant)
            if let storeID = assistant.tool_resources?["file_search"]?["vector_store_ids"]?.arrayValue?.first?.stringValue {
                try await session.delete(.vectorStoreFile, id: VectorStoreFile.rowID(vectorStoreID: storeID, fileID: fileID))
                try await session.deleteChunks(vectorStoreID: storeID, fileID: fileID)
            }
            try await session.update(assistant)
        }
        return .json((["id": .string(fileID), "object": "assistant.file.deleted", "deleted": true] as JSONValue).jsonString)
    }

    @Sendable func listMessageFiles(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        let messageID = try context.parameters.require("message_id")
        let entries = try await store.read(project: context.project) { session in
            let message = try await MessagesController.find(messageID, in: threadID, session: session)
            return try await (message.attachments ?? []).compactMap { $0["file_id"]?.stringValue }.asyncMap {
                try await entry($0, owner: messageID, ownerKey: "message_id", object: "thread.message.file", session: session)
            }
        }
        return try list(entries, request: request)
    }

    @Sendable func retrieveMessageFile(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        let messageID = try context.parameters.require("message_id")
        let fileID = try context.parameters.require("file_id")
        let result = try await store.read(project: context.project) { session in
            let message = try await MessagesController.find(messageID, in: threadID, session: session)
            guard (message.attachments ?? []).contains(where: { $0["file_id"]?.stringValue == fileID }) else {
                throw APIError.notFound("message file", id: fileID)
            }
            return try await entry(fileID, owner: messageID, ownerKey: "message_id", object: "thread.message.file", session: session)
        }
        return .json(result.jsonString)
    }
}
