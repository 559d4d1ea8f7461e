import Hummingbird

/// `/v1/threads/{thread_id}/runs` and `/v1/threads/runs`: create (optionally streamed),
/// create-thread-and-run, list, retrieve, modify, cancel, submit_tool_outputs.
struct RunsController {
    let store: ObjectStore
    let runs: Runs
    let expirySeconds: Int
    /// Why runs cannot use code_interpreter here, if they cannot.
    let codeInterpreterUnavailable: String?

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("threads/runs", use: Self.inChildTask(createThreadAndRun))
        group.post("threads/:thread_id/runs", use: Self.inChildTask(create))
        group.get("threads/:thread_id/runs", use: list)
        group.get("threads/:thread_id/runs/:run_id", use: retrieve)
        group.post("threads/:thread_id/runs/:run_id", use: modify)
        group.post("threads/:thread_id/runs/:run_id/cancel", use: cancel)
        group.post("threads/:thread_id/runs/:run_id/submit_tool_outputs", use: Self.inChildTask(submitToolOutputs))
    }

    /// A streamed request's task writes the run's events for as long as the run streams, and a
    /// task keeps the deepest stack of frames it ever had until it ends (see `inChildTask`): the
    /// work before the first event (parsing, the transaction, scheduling the run) runs in a child
    /// task. Only here: a child task costs a request two trips through its event loop's queue;
    /// with one for every request, /health's p99 while 10,000 streams opened went 20 -> 67 ms.
    static func inChildTask(_ handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Response)
        -> @Sendable (Request, APIRequestContext) async throws -> Response {
        { request, context in try await AssistantsServer.inChildTask { try await handler(request, context) } }
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        _ = try RunStepsController.includesContent(request)
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: RunRequest.createFields)
        let runRequest = try RunRequest(body, version: context.apiVersion)
        let now = unixNow()
        var additional: [Message] = []
        for (index, item) in (try body.array("additional_messages").value ?? []).enumerated() {
            guard case .object(let fields) = item else {
                throw body.typeError("additional_messages[\(index)]", expected: "an object", got: item)
            }
            let inline = try JSONRequest(fields: fields, path: "additional_messages[\(index)].").inlineMessage()
            var message = Message(id: IDPrefix.message.makeID(), created_at: now, thread_id: threadID, role: inline.role, content: inline.content)
            message.attachments = inline.attachments ?? []
            message.metadata = inline.metadata ?? [:]
            additional.append(message)
        }
        let (expirySeconds, unavailable) = (expirySeconds, codeInterpreterUnavailable)
        let started = try await runs.create(threadID: threadID, assistantID: runRequest.assistantID, additional: additional,
                                            stream: runRequest.stream, project: context.project) { assistant in
            try runRequest.makeRun(assistant: assistant, threadID: threadID, expirySeconds: expirySeconds, codeInterpreterUnavailable: unavailable)
        }
        return Self.response(started)
    }

    @Sendable func createThreadAndRun(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: RunRequest.createAndRunFields)
        let runRequest = try RunRequest(body, version: context.apiVersion)
        var new = try ThreadsController.parse(try body.object("thread").value ?? JSONRequest(fields: [:], path: "thread."), session: nil)
        if let resources = try body.toolResources().value { new.thread.tool_resources = resources }
        let (threadID, expirySeconds, unavailable) = (new.thread.id, expirySeconds, codeInterpreterUnavailable)
        let started = try await runs.createThreadAndRun(new, assistantID: runRequest.assistantID, stream: runRequest.stream,
                                                        project: context.project) { assistant in
            try runRequest.makeRun(assistant: assistant, threadID: threadID, expirySeconds: expirySeconds, codeInterpreterUnavailable: unavailable)
        }
        return Self.response(started)
    }

    /// The run as JSON, or its events when the client streams.
    private static func response(_ started: Runs.Started) -> Response {
        if let events = started.events {
            return EventStreamResponse.make(leading: started.leading, events: events)
        }
        return .json(started.run.body)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        let page = try ListQuery.page(from: request)
        let result = try await store.read(project: context.project) { session in
            guard try await session.exists(.thread, id: threadID) else { throw APIError.notFound("thread", id: threadID) }
            return try await session.list(.run, parentID: threadID, page: page)
        }
        return .json(result.json)
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, runID) = try ids(context)
        // The stored JSON as it is: a poll decodes and encodes nothing.
        let body = try await store.read(project: context.project) { session -> String in
            if let body = try await session.body(.run, id: runID, parentID: threadID) { return body }
            guard try await session.exists(.thread, id: threadID) else { throw APIError.notFound("thread", id: threadID) }
            throw APIError.notFound("run", id: runID)
        }
        return .json(body)
    }

    @Sendable func modify(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, runID) = try ids(context)
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["metadata"])
        let metadata = try body.metadata()
        let run = try await runs.modify(runID: runID, threadID: threadID, project: context.project) { metadata.apply(to: &$0.metadata) }
        return .json(run.body)
    }

    @Sendable func cancel(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, runID) = try ids(context)
        return .json(try await runs.cancel(runID: runID, threadID: threadID, project: context.project).body)
    }

    @Sendable func submitToolOutputs(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, runID) = try ids(context)
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: ["tool_outputs", "stream"])
        let stream = try body.bool("stream").value ?? false
        let items = try body.required(body.array("tool_outputs"), "tool_outputs")
        var outputs: [(id: String, output: String)] = []
        for (index, item) in items.enumerated() {
            guard case .object(let fields) = item else { throw body.typeError("tool_outputs[\(index)]", expected: "an object", got: item) }
            let entry = JSONRequest(fields: fields, path: "tool_outputs[\(index)].")
            try entry.rejectUnknown(allowed: ["tool_call_id", "output"])
            let id = try entry.required(entry.string("tool_call_id"), "tool_call_id")
            let output = try entry.string("output", maxLength: 512_000).value ?? ""
            outputs.append((id, output))
        }
        let started = try await runs.submitToolOutputs(outputs, runID: runID, threadID: threadID, stream: stream, project: context.project)
        return Self.response(started)
    }

    private func ids(_ context: APIRequestContext) throws -> (String, String) {
        (try context.parameters.require("thread_id"), try context.parameters.require("run_id"))
    }
}
