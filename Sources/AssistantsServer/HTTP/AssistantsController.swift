import Hummingbird

/// `/v1/assistants`: create, list, retrieve, modify, delete.
struct AssistantsController {
    let store: ObjectStore
    let library: VectorStoreLibrary

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("assistants", use: create)
        group.get("assistants", use: list)
        group.get("assistants/:assistant_id", use: retrieve)
        group.post("assistants/:assistant_id", use: modify)
        group.delete("assistants/:assistant_id", use: delete)
    }

    static let fields: Set<String> = [
        "model", "name", "description", "instructions", "reasoning_effort", "tools", "tool_resources",
        "metadata", "temperature", "top_p", "response_format",
    ]

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: Self.fields)
        let model = try body.required(body.nonEmptyString("model", maxLength: 256), "model")
        var assistant = Assistant(id: IDPrefix.assistant.makeID(), created_at: unixNow(), model: model)
        try apply(body, to: &assistant, version: context.apiVersion)
        let (created, added) = try await store.write(project: context.project) { session in
            var assistant = assistant
            let added: [VectorStoreFile]
            (assistant.tool_resources, added) = try await library.materialize(assistant.tool_resources, session: session)
            try await session.insert(assistant)
            return (assistant, added)
        }
        library.startIngestion(added, project: context.project)
        return try .json(encoding: created)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let page = try ListQuery.page(from: request)
        return .json(try await store.read(project: context.project) { try await $0.list(.assistant, page: page) }.json)
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("assistant_id")
        guard let body = try await store.read(project: context.project, { try await $0.body(.assistant, id: id) }) else {
            throw APIError.notFound("assistant", id: id)
        }
        return .json(body)
    }

    @Sendable func modify(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("assistant_id")
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: Self.fields)
        let (assistant, added) = try await store.write(project: context.project) { session in
            var assistant = try await session.require(Assistant.self, id: id)
            if let model = try body.nonEmptyString("model", maxLength: 256).value { assistant.model = model }
            try apply(body, to: &assistant, version: context.apiVersion)
            let added: [VectorStoreFile]
            (assistant.tool_resources, added) = try await library.materialize(assistant.tool_resources, session: session)
            try await session.update(assistant)
            return (assistant, added)
        }
        library.startIngestion(added, project: context.project)
        return try .json(encoding: assistant)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("assistant_id")
        let deleted = try await store.write(project: context.project) { try await $0.delete(.assistant, id: id) }
        guard deleted else { throw APIError.notFound("assistant", id: id) }
        return try .json(encoding: DeletionStatus(id: id, object: "assistant.deleted"))
    }

    /// The optional fields shared by create and modify.
    private func apply(_ body: JSONRequest, to assistant: inout Assistant, version: APIVersion) throws {
        try body.string("name", maxLength: 256).apply(to: &assistant.name)
        try body.string("description", maxLength: 512).apply(to: &assistant.description)
        try body.string("instructions", maxLength: 256_000).apply(to: &assistant.instructions)
        try body.string("reasoning_effort", allowed: ["minimal", "low", "medium", "high"]).apply(to: &assistant.reasoning_effort)
        switch try body.tools(maxItems: 128, version: version) {
        case .value(let tools): assistant.tools = tools
        case .null: assistant.tools = []
        case .absent: break
        }
        try body.toolResources().apply(to: &assistant.tool_resources)
        try body.metadata().apply(to: &assistant.metadata)
        try body.number("temperature", in: 0...2).apply(to: &assistant.temperature)
        try body.number("top_p", in: 0...1).apply(to: &assistant.top_p)
        try body.responseFormat().apply(to: &assistant.response_format)
    }
}
