import Hummingbird

/// `/v1/threads`: create (with initial messages), retrieve, modify, delete.
struct ThreadsController {
    let store: ObjectStore
    let library: VectorStoreLibrary

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("threads", use: create)
        group.get("threads/:thread_id", use: retrieve)
        group.post("threads/:thread_id", use: modify)
        group.delete("threads/:thread_id", use: delete)
    }

    static let fields: Set<String> = ["messages", "tool_resources", "metadata"]

    /// Validates a `CreateThreadRequest` (the body of create, or `thread` of create-and-run).
    static func parse(_ body: JSONRequest, session: StoreSession?) throws -> NewThread {
        try body.rejectUnknown(allowed: fields)
        let now = unixNow()
        var thread = AssistantThread(id: IDPrefix.thread.makeID(), created_at: now)
        try body.toolResources().apply(to: &thread.tool_resources)
        if thread.tool_resources == nil { thread.tool_resources = .object([:]) }
        try body.metadata().apply(to: &thread.metadata)
        var messages: [Message] = []
        for (index, item) in (try body.array("messages").value ?? []).enumerated() {
            let key = "messages[\(index)]"
            guard case .object(let fields) = item else { throw body.typeError(key, expected: "an object", got: item) }
            let inline = try JSONRequest(fields: fields, path: body.param(key) + ".").inlineMessage()
            var message = Message(id: IDPrefix.message.makeID(), created_at: now, thread_id: thread.id, role: inline.role, content: inline.content)
            message.attachments = inline.attachments ?? []
            message.metadata = inline.metadata ?? [:]
            messages.append(message)
        }
        return NewThread(thread: thread, messages: messages)
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONRequest.parse(request, context: context)
        let new = try Self.parse(body, session: nil)
        let (thread, added) = try await store.write(project: context.project) { try await new.insert(library: library, session: $0) }
        library.startIngestion(added, project: context.project)
        return .json(thread.body)
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("thread_id")
        guard let body = try await store.read(project: context.project, { try await $0.body(.thread, id: id) }) else {
            throw APIError.notFound("thread", id: id)
        }
        return .json(body)
    }

    @Sendable func modify(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("thread_id")
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["tool_resources", "metadata"])
        let (stored, added) = try await store.write(project: context.project) { session in
            var thread = try await session.require(AssistantThread.self, id: id)
            try body.toolResources().apply(to: &thread.tool_resources)
            try body.metadata().apply(to: &thread.metadata)
            let added: [VectorStoreFile]
            (thread.tool_resources, added) = try await library.materialize(thread.tool_resources, session: session)
            return (try await session.update(thread), added)
        }
        library.startIngestion(added, project: context.project)
        return .json(stored)
    }

    /// Deletes the thread with its messages, runs, run steps and its own vector store; its
    /// code_interpreter session is closed by the next housekeeping sweep of the server holding it.
    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("thread_id")
        let deleted = try await store.write(project: context.project) { try await Removal.thread(id, session: $0) }
        guard deleted else { throw APIError.notFound("thread", id: id) }
        return try .json(encoding: DeletionStatus(id: id, object: "thread.deleted"))
    }
}
