import Hummingbird

/// `/v1/threads/{thread_id}/runs` and `/v1/threads/runs`: create (optionally streamed),
/// create-thread-and-run, list, retrieve, modify, cancel, submit_tool_outputs.
struct RunsController {
    let store: ObjectStore
    let library: VectorStoreLibrary
    let engine: RunEngine
    let expirySeconds: Int
    /// Why runs cannot use code_interpreter here, if they cannot.
    let codeInterpreterUnavailable: String?

    var hub: RunEventHub { engine.hub }

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.post("threads/runs", use: createThreadAndRun)
        group.post("threads/:thread_id/runs", use: create)
        group.get("threads/:thread_id/runs", use: list)
        group.get("threads/:thread_id/runs/:run_id", use: retrieve)
        group.post("threads/:thread_id/runs/:run_id", use: modify)
        group.post("threads/:thread_id/runs/:run_id/cancel", use: cancel)
        group.post("threads/:thread_id/runs/:run_id/submit_tool_outputs", use: submitToolOutputs)
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        _ = try RunStepsController.includesContent(request)
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: RunRequest.createFields)
        let runRequest = try RunRequest(body, version: context.apiVersion)
        var additional: [(role: String, content: [JSONValue], attachments: [JSONValue]?, metadata: [String: String]?)] = []
        for (index, item) in (try body.array("additional_messages").value ?? []).enumerated() {
            guard case .object(let fields) = item else {
                throw body.typeError("additional_messages[\(index)]", expected: "an object", got: item)
            }
            additional.append(try JSONRequest(fields: fields, path: "additional_messages[\(index)].").inlineMessage())
        }
        let (run, added) = try await store.write(project: context.project) { session -> (Stored<Run>, [VectorStoreFile]) in
            // Every run create locks its thread's row first, so of two concurrent creates (on any
            // servers sharing the database) the second sees the first's run and gets the API's 400.
            guard var thread = try await session.getForUpdate(AssistantThread.self, id: threadID) else {
                throw APIError.notFound("thread", id: threadID)
            }
            let assistant = try await session.require(Assistant.self, id: runRequest.assistantID)
            if let active = try await session.activeRunID(threadID: threadID) {
                throw APIError.invalidRequest("Thread \(threadID) already has an active run \(active).")
            }
            let run = try runRequest.makeRun(assistant: assistant, threadID: threadID, expirySeconds: expirySeconds, codeInterpreterUnavailable: codeInterpreterUnavailable)
            var messages: [Message] = []
            for inline in additional {
                var message = Message(id: IDPrefix.message.makeID(), created_at: run.created_at, thread_id: threadID,
                                      role: inline.role, content: inline.content)
                message.attachments = inline.attachments ?? []
                message.metadata = inline.metadata ?? [:]
                try await MessagesController.checkFiles(of: message, session: session, blobs: library.ingestion.blobs)
                try await session.insert(message)
                messages.append(message)
            }
            let added = try await library.attachToThread(messages, thread: &thread, session: session)
            if !added.isEmpty { try await session.update(thread) }
            return (try await insertOwned(run, session: session), added)
        }
        library.startIngestion(added, project: context.project)
        return start(run, project: context.project, stream: runRequest.stream)
    }

    @Sendable func createThreadAndRun(_ request: Request, context: APIRequestContext) async throws -> Response {
        let body = try await JSONRequest.parse(request, context: context)
        try body.rejectUnknown(allowed: RunRequest.createAndRunFields)
        let runRequest = try RunRequest(body, version: context.apiVersion)
        var new = try ThreadsController.parse(try body.object("thread").value ?? JSONRequest(fields: [:], path: "thread."), session: nil)
        if let resources = try body.toolResources().value { new.thread.tool_resources = resources }
        let (thread, run, added) = try await store.write(project: context.project) { session -> (AssistantThread, Stored<Run>, [VectorStoreFile]) in
            let assistant = try await session.require(Assistant.self, id: runRequest.assistantID)
            let run = try runRequest.makeRun(assistant: assistant, threadID: new.thread.id, expirySeconds: expirySeconds, codeInterpreterUnavailable: codeInterpreterUnavailable)
            let (thread, added) = try await ThreadsController.insert(new, library: library, session: session)
            return (thread, try await insertOwned(run, session: session), added)
        }
        library.startIngestion(added, project: context.project)
        return start(run, project: context.project, stream: runRequest.stream,
                     leading: [RunEvent(name: "thread.created", encoding: thread)])
    }

    /// Stores a new run as this server's to execute.
    private func insertOwned(_ run: Run, session: StoreSession) async throws -> Stored<Run> {
        let stored = Stored(run, body: try await session.insert(run))
        try await session.setOwner(ofRun: run.id, to: engine.nodeID)
        return stored
    }

    /// Hands a stored queued run to the engine; with `stream`, answers with its events.
    private func start(_ stored: Stored<Run>, project: String, stream: Bool, leading: [RunEvent] = []) -> Response {
        let runID = stored.object.id
        let events = stream ? hub.subscribe(runID: runID) : nil
        hub.publish(runID: runID, RunEvent(name: "thread.run.created", data: stored.body))
        AppMetrics.runTransition(to: "queued")
        hub.publish(runID: runID, RunEvent(name: "thread.run.queued", data: stored.body))
        engine.schedule(runID: runID, project: project, snapshot: stored)
        if let events {
            return EventStreamResponse.make(leading: leading, events: events)
        }
        return .json(stored.body)
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
        let run = try await store.write(project: context.project) { session in
            var run = try await Self.find(runID, in: threadID, session: session, forUpdate: true)
            metadata.apply(to: &run.metadata)
            try await session.update(run)
            return run
        }
        return try .json(encoding: run)
    }

    @Sendable func cancel(_ request: Request, context: APIRequestContext) async throws -> Response {
        let (threadID, runID) = try ids(context)
        let run = try await store.write(project: context.project) { session in
            var run = try await Self.find(runID, in: threadID, session: session, forUpdate: true)
            guard [.queued, .in_progress, .requires_action].contains(run.status) else {
                throw APIError.invalidRequest("Cannot cancel run with status '\(run.status.rawValue)'.")
            }
            run.status = .cancelling
            try await session.update(run)
            return run
        }
        AppMetrics.runTransition(to: "cancelling")
        hub.publish(runID: run.id, RunEvent(name: "thread.run.cancelling", encoding: run))
        try await engine.cancel(runID: run.id, project: context.project)
        return try .json(encoding: run)
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
        let events = stream ? hub.subscribe(runID: runID) : nil
        let (stored, step) = try await store.write(project: context.project) { session -> (Stored<Run>, RunStep) in
            var run = try await Self.find(runID, in: threadID, session: session, forUpdate: true)
            guard run.status == .requires_action, let pending = run.required_action?.submit_tool_outputs.tool_calls else {
                throw APIError.invalidRequest(
                    "Runs in status \"\(run.status.rawValue)\" do not accept tool outputs.", code: nil)
            }
            let step = try await Self.recordOutputs(outputs, pending: pending, run: run, session: session)
            run.status = .queued
            run.required_action = nil
            // This server executes the rest of the run.
            try await session.setOwner(ofRun: run.id, to: engine.nodeID)
            return (Stored(run, body: try await session.update(run)), step)
        }
        hub.publish(runID: runID, RunEvent(name: "thread.run.step.completed", encoding: step))
        AppMetrics.runTransition(to: "queued")
        hub.publish(runID: runID, RunEvent(name: "thread.run.queued", data: stored.body))
        engine.schedule(runID: runID, project: context.project, snapshot: stored)
        if let events {
            return EventStreamResponse.make(events: events)
        }
        return .json(stored.body)
    }

    /// Checks that the outputs answer exactly the pending calls and completes the tool_calls step with them.
    static func recordOutputs(_ outputs: [(id: String, output: String)], pending: [ToolCall], run: Run, session: StoreSession) async throws -> RunStep {
        let pendingIDs = Set(pending.map(\.id))
        var byID: [String: String] = [:]
        for (index, output) in outputs.enumerated() {
            guard pendingIDs.contains(output.id) else {
                throw APIError.invalidRequest("Invalid 'tool_outputs[\(index)].tool_call_id': no pending tool call has id '\(output.id)'.",
                                              param: "tool_outputs[\(index)].tool_call_id")
            }
            guard byID[output.id] == nil else {
                throw APIError.invalidRequest("Duplicate output for tool call '\(output.id)'.", param: "tool_outputs[\(index)].tool_call_id")
            }
            byID[output.id] = output.output
        }
        let missing = pending.map(\.id).filter { byID[$0] == nil }
        guard missing.isEmpty else {
            throw APIError.invalidRequest(
                "Expected tool outputs for call_ids \(pending.map(\.id)), got \(outputs.map(\.id)). Missing: \(missing).", param: "tool_outputs")
        }
        let steps = try await session.all(RunStep.self, parentID: run.id)
        guard var step = steps.last(where: { $0.type == "tool_calls" && $0.status == .in_progress }) else {
            throw APIError.server("The run's tool_calls step is missing.")
        }
        let calls = step.step_details["tool_calls"]?.arrayValue ?? []
        step.step_details = ["type": "tool_calls", "tool_calls": .array(calls.map { call in
            guard case .object(var fields) = call, let id = call["id"]?.stringValue, case .object(var function)? = fields["function"] else { return call }
            function["output"] = byID[id].map { .string($0) } ?? .null
            fields["function"] = .object(function)
            return .object(fields)
        })]
        step.status = .completed
        step.completed_at = unixNow()
        // The step's usage: what the run used beyond its steps that already carry theirs.
        let counted = steps.compactMap(\.usage).reduce(Usage(), +)
        let total = run.usage ?? Usage()
        step.usage = Usage(prompt_tokens: max(0, total.prompt_tokens - counted.prompt_tokens),
                           completion_tokens: max(0, total.completion_tokens - counted.completion_tokens))
        try await session.update(step)
        return step
    }

    private func ids(_ context: APIRequestContext) throws -> (String, String) {
        (try context.parameters.require("thread_id"), try context.parameters.require("run_id"))
    }

    /// The run, if it exists on that thread; else the 404 for the thread or the run.
    /// `forUpdate` locks the run's row for a read-modify-write against the engine's own.
    static func find(_ runID: String, in threadID: String, session: StoreSession, forUpdate: Bool = false) async throws -> Run {
        guard try await session.exists(.thread, id: threadID) else { throw APIError.notFound("thread", id: threadID) }
        let found = forUpdate ? try await session.getForUpdate(Run.self, id: runID) : try await session.get(Run.self, id: runID)
        guard let run = found, run.thread_id == threadID else {
            throw APIError.notFound("run", id: runID)
        }
        return run
    }
}
