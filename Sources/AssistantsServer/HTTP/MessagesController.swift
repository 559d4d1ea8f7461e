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
            try await message.checkFiles(session: session, blobs: library.ingestion.blobs)
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
