import Hummingbird

/// `/v1/threads/{thread_id}/messages`: create, list (with `run_id`), retrieve, modify, delete.
struct MessagesController {
    let store: ObjectStore
    let library: VectorStoreLibrary

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("threads/:thread_id/messages", use: create)
        group.get("threads/:thread_id/messages", use: list)
        group.get("threads/:thread_id/messages/:message_id", use: retrieve)
        group.post("threads/:thread_id/messages/:message_id", use: modify)
        group.delete("threads/:thread_id/messages/:message_id", use: delete)
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        let body = try await JSONRequest.parse(request, context: context)
        let inline = try body.inlineMessage()
        var message = Message(id: IDPrefix.message.makeID(), created_at: unixNow(), thread_id: threadID, role: inline.role, content: inline.content)
        message.attachments = inline.attachments ?? []
        message.metadata = inline.metadata ?? [:]
        let searchesFiles = (message.attachments ?? []).contains { attachment in
            (attachment["tools"]?.arrayValue ?? []).contains { $0["type"]?.stringValue == "file_search" }
        }
        let refersToFiles = !(message.attachments ?? []).isEmpty || message.content.contains { $0["image_file"] != nil }
        let added = try await store.write(project: context.project) { session in
            // The common case, a message with no files: checked and inserted in one statement.
            if !refersToFiles, try await session.insertIfThreadIdle(message, threadID: threadID) { return [VectorStoreFile]() }
            switch try await session.threadState(threadID) {
            case .missing:
                throw APIError.notFound("thread", id: threadID)
            case .busy(let runID):
                throw APIError.invalidRequest("Can't add messages to \(threadID) while a run \(runID) is active.")
            case .idle:
                break
            }
            try await Self.checkFiles(of: message, session: session, blobs: library.ingestion.blobs)
            var added: [VectorStoreFile] = []
            if searchesFiles {
                var thread = try await session.require(AssistantThread.self, id: threadID)
                added = try await library.attachToThread([message], thread: &thread, session: session)
                if !added.isEmpty { try await session.update(thread) }
            }
            try await session.insert(message)
            return added
        }
        library.startIngestion(added, project: context.project)
        return try .json(encoding: message)
    }

    /// Every file a message names (attachments, image_file parts) must exist in the caller's project;
    /// an image_file must be a PNG, JPEG, GIF or WebP of at most 20 MB (read from its bytes).
    static func checkFiles(of message: Message, session: StoreSession, blobs: FileBlobs) async throws {
        for (index, attachment) in (message.attachments ?? []).enumerated() {
            if let fileID = attachment["file_id"]?.stringValue, try await !session.exists(.file, id: fileID) {
                throw APIError.invalidRequest("No file found with id '\(fileID)'.", param: "attachments[\(index)].file_id")
            }
        }
        for (index, part) in message.content.enumerated() {
            guard let fileID = part["image_file"]?["file_id"]?.stringValue else { continue }
            let param = "content[\(index)].image_file.file_id"
            guard let file = try await session.get(OpenAIFile.self, id: fileID) else {
                throw APIError.invalidRequest("No file found with id '\(fileID)'.", param: param)
            }
            if file.bytes > PromptImages.maxBytes {
                throw APIError.invalidRequest(
                    "The image '\(fileID)' is \(file.bytes) bytes; images may be at most \(PromptImages.maxBytes / (1024 * 1024)) MB.", param: param)
            }
            guard let path = blobs.path(for: fileID), await PromptImages.mimeType(ofFileAt: path) != nil else {
                throw APIError.invalidRequest(
                    "The file '\(fileID)' is not an image: image_file takes PNG, JPEG, GIF or WebP files.", param: param, code: "invalid_image")
            }
        }
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        let page = try ListQuery.page(from: request)
        let runID = request.uri.queryParameters.get("run_id").flatMap { $0.isEmpty ? nil : $0 }
        let result = try await store.read(project: context.project) { session in
            guard try await session.exists(.thread, id: threadID) else { throw APIError.notFound("thread", id: threadID) }
            return try await session.list(.message, parentID: threadID, tag: runID, page: page)
        }
        return .json(result.json)
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, messageID) = try ids(context)
        let message = try await store.read(project: context.project) { try await Self.find(messageID, in: threadID, session: $0) }
        return try .json(encoding: message)
    }

    @Sendable func modify(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, messageID) = try ids(context)
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["metadata"])
        let metadata = try body.metadata()
        let message = try await store.write(project: context.project) { session in
            var message = try await Self.find(messageID, in: threadID, session: session)
            metadata.apply(to: &message.metadata)
            try await session.update(message)
            return message
        }
        return try .json(encoding: message)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, messageID) = try ids(context)
        try await store.write(project: context.project) { session in
            _ = try await Self.find(messageID, in: threadID, session: session)
            try await session.delete(.message, id: messageID)
        }
        return try .json(encoding: DeletionStatus(id: messageID, object: "thread.message.deleted"))
    }

    private func ids(_ context: APIRequestContext) throws -> (String, String) {
        (try context.parameters.require("thread_id"), try context.parameters.require("message_id"))
    }

    /// The message, if it exists in that thread; else the 404 for the thread or the message.
    static func find(_ messageID: String, in threadID: String, session: StoreSession) async throws -> Message {
        guard try await session.exists(.thread, id: threadID) else { throw APIError.notFound("thread", id: threadID) }
        guard let message = try await session.get(Message.self, id: messageID), message.thread_id == threadID else {
            throw APIError.notFound("message", id: messageID)
        }
        return message
    }
}
