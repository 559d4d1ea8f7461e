import Foundation
import Logging
import Tracing

/// Drives one run forward: model turns until the run completes, waits for tool outputs
/// (`requires_action`) or fails. Every state change is written before its event is published.
struct RunExecutor {
    let store: ObjectStore
    let client: any ChatModel
    let router: ModelRouter
    let hub: RunEventHub
    let fileSearch: FileSearchTool
    let codeInterpreter: CodeInterpreterTool
    /// The stored file bytes, for `image_file` parts.
    let blobs: any BlobStore
    let logger: Logger
    /// Model turns one run may take in a row (each server-side tool round is one).
    let maxTurns = 10

    var updates: RunTransitions { RunTransitions(store: store, hub: hub) }

    /// What went wrong in a way that ends the run `incomplete`.
    struct Incomplete: Error {
        var reason: String
    }

    /// What a turn leaves to do.
    enum TurnOutcome {
        /// The run completed, waits for tool outputs, or ended otherwise.
        case finished
        /// Server-side tools ran; the model takes another turn.
        case again
    }

    /// Takes a queued (or resumed in_progress) run through its model turns until it finishes
    /// or waits for the client's tool outputs. `snapshot` is the run as just stored, if known.
    /// Each step that needs room (starting, planning a turn, asking the model, concluding) is a
    /// function of its own, not inlined, and all but asking run in a child task (`inChildTask`),
    /// so that the frames this task keeps while an answer streams are small (see `TurnPlan`).
    func execute(lease: RunLease, snapshot: Stored<Run>? = nil) async throws {
        guard let progress = try await inChildTask({ try await begin(lease: lease, snapshot: snapshot) }) else { return }
        let recordLater = progress.start.writeLater()
        defer { recordLater?.cancel() }
        guard let endpoint = router.endpoint(for: progress.run.model) else {
            return try await failUnrouted(model: progress.run.model, lease: lease)
        }
        for _ in 0..<maxTurns {
            let outcome: TurnOutcome
            do {
                outcome = try await turn(progress, project: lease.project, endpoint: endpoint)
            } catch {
                // A run that fails was started: record it first, so it ends with its started_at.
                _ = try? await inChildTask { try await progress.start.ensureWritten() }
                throw error
            }
            guard case .again = outcome else { return }
            guard try await inChildTask({ try await progress.reread(from: store) }) else {
                if Task.isCancelled { throw CancellationError() }
                return
            }
        }
        try await inChildTask { try await fail(lease, message: "The model kept calling tools for \(maxTurns) rounds without answering.") }
    }

    /// Marks the run started: a streamed run was stored `in_progress`, and its event sent, by the
    /// request that queued it (`Runs.pickedUp`); any other is recorded later (`RunStart`). Nil
    /// when there is nothing to run (ended, or cancelled: then ended so).
    @inline(never)
    private func begin(lease: RunLease, snapshot: Stored<Run>?) async throws -> RunProgress? {
        let runID = lease.runID
        let now = unixNow()
        // A run handed over as its creator stored it is not read back; if it was ended since,
        // the final write (or RunStart) finds out.
        let stored: Stored<Run>? = if let snapshot { snapshot } else {
            try await store.read(project: lease.project) { try await $0.getStored(Run.self, id: runID) }
        }
        guard let stored else { return nil }
        var run = stored.object
        if run.status == .cancelling {
            try await updates.end(lease, as: .cancelled)
            return nil
        }
        guard run.status == .queued || run.status == .in_progress else { return nil }
        let written = run.status == .in_progress
        run.markStarted(at: now)
        let start = RunStart(lease: lease, startedAt: run.started_at ?? now, updates: updates, written: written)
        return RunProgress(run: run, known: stored, start: start)
    }

    /// The run names a model no upstream serves: it fails, saying how to configure one.
    @inline(never)
    private func failUnrouted(model: String, lease: RunLease) async throws {
        try await fail(lease, message: router.isConfigured
            ? "No model upstream serves the model '\(model)': add it to the models file (--models-config)."
            : "No model upstream is configured: set ASSISTANTS_UPSTREAM_URL (an OpenAI-compatible base URL ending in /v1) and, if it needs one, ASSISTANTS_UPSTREAM_API_KEY.")
    }

    @inline(never)
    private func fail(_ lease: RunLease, message: String) async throws {
        try await updates.end(lease, as: .failed, error: LastError(code: "server_error", message: message))
    }

    /// One model call, and what follows from its answer.
    @inline(never)
    private func turn(_ progress: RunProgress, project: String, endpoint: UpstreamEndpoint) async throws -> TurnOutcome {
        guard let plan = try await inChildTask({ try await plan(progress, project: project, endpoint: endpoint) }) else { return .finished }
        let (answer, state) = try await ask(plan)
        return try await inChildTask { try await conclude(plan, answer: answer, state: state) }
    }

    /// Reads what the turn needs (the thread's messages, the run's steps, the tools' resources),
    /// builds the prompt and the request, and constrains it for models that need it. Nil when a
    /// token budget is already spent: the run has then ended `incomplete`.
    @inline(never)
    private func plan(_ progress: RunProgress, project: String, endpoint: UpstreamEndpoint) async throws -> TurnPlan? {
        let run = progress.run
        let usesResources = run.tools.contains { $0["type"]?.stringValue != "function" }
        let (messages, steps, vectorStoreIDs, codeFileIDs, imageFiles) = try await store.read(project: project) { session in
            // Tool resources matter only to the server-side tools.
            let assistant = usesResources ? try await session.get(Assistant.self, id: run.assistant_id) : nil
            let thread = usesResources ? try await session.get(AssistantThread.self, id: run.thread_id) : nil
            let resources = [assistant?.tool_resources, thread?.tool_resources]
            let ids = resources.compactMap { $0?["file_search"]?["vector_store_ids"]?.arrayValue?.compactMap(\.stringValue) }.flatMap { $0 }
            let messages = try await session.all(Message.self, parentID: run.thread_id)
            let attached = messages.flatMap { message in
                (message.attachments ?? []).filter { attachment in
                    (attachment["tools"]?.arrayValue ?? []).contains { $0["type"]?.stringValue == CodeInterpreterTool.name }
                }.compactMap { $0["file_id"]?.stringValue }
            }
            let codeFiles = resources.compactMap { $0?["code_interpreter"]?["file_ids"]?.arrayValue?.compactMap(\.stringValue) }.flatMap { $0 }
            var imageFiles: [String: OpenAIFile] = [:]
            for message in messages {
                for part in message.content {
                    if let fileID = part["image_file"]?["file_id"]?.stringValue, imageFiles[fileID] == nil {
                        imageFiles[fileID] = try await session.get(OpenAIFile.self, id: fileID)
                    }
                }
            }
            return (messages, try await session.all(RunStep.self, parentID: run.id), ids, codeFiles + attached, imageFiles)
        }
        let images = messages.contains(where: PromptImages.showsImages) ? await PromptImages.load(for: messages, files: imageFiles, blobs: blobs, vision: endpoint.vision) : nil
        let prompt = PromptBuilder.build(run: run, threadMessages: messages, steps: steps, contextWindow: endpoint.contextWindow,
                                         images: images, vision: endpoint.vision)
        if prompt.overBudget, run.max_prompt_tokens != nil {
            try await finishIncomplete(run, known: progress.known, lease: progress.start.lease, reason: "max_prompt_tokens", turn: nil, state: nil)
            return nil
        }
        let usedCompletion = run.usage?.completion_tokens ?? 0
        // `required` or a named tool holds until the run has made a call; then the model chooses.
        let madeCall = steps.contains { $0.type == "tool_calls" }
        var request = chatRequest(for: run, messages: prompt.messages, madeCall: madeCall)
        if let limit = run.max_completion_tokens {
            let remaining = limit - usedCompletion
            if remaining <= 0 {
                try await finishIncomplete(run, known: progress.known, lease: progress.start.lease, reason: "max_completion_tokens", turn: nil, state: nil)
                return nil
            }
            request.maxOutputTokens = remaining
        }
        if let cap = endpoint.maxOutputTokens {
            request.maxOutputTokens = min(request.maxOutputTokens ?? cap, cap)
        }
        let plan = TurnPlan(progress: progress, project: project, endpoint: endpoint, request: request, madeCall: madeCall, steps: steps,
                            vectorStoreIDs: vectorStoreIDs, codeFileIDs: codeFileIDs, estimatedPromptTokens: prompt.estimatedTokens)
        if plan.constrainable, prompt.messages.last?["role"]?.stringValue != "tool" || plan.forced,
           let format = ToolCallGuard.responseFormat(functions: plan.offered, choice: plan.choice) {
            plan.constrain(to: format)
        }
        return plan
    }

    /// Asks the model, streaming its answer through the turn's `TurnState`; asks again (as JSON
    /// where the upstream can constrain it) while the answer is empty or its calls are not valid.
    @inline(never)
    private func ask(_ plan: TurnPlan) async throws -> (ChatTurn, TurnState) {
        let state = TurnState(run: plan.run, store: store, hub: hub, start: plan.start, serverTools: plan.serverTools,
                              bufferText: plan.endpoint.constrainToolCalls && !plan.offered.isEmpty)
        var turn = ChatTurn()
        for attempt in 1...Self.toolCallAttempts {
            do {
                turn = try await client.complete(plan.request, endpoint: plan.endpoint) { delta in
                    try await state.handle(delta)
                }
            } catch {
                // Cancelled, expired or failed mid-answer: the message keeps what was streamed so
                // far (its insert, if still under way, landed first: the run's end closes it).
                await Task { try? await state.saveText() }.value
                throw error
            }
            let problems = Self.settleToolCalls(&turn, constrained: plan.constrained, functions: plan.userFunctions, serverTools: plan.serverTools)
            // A weak model's answer that was nothing but markup, or a call that is not valid, is asked for again.
            // Looked at in place: trimming copied every answer through an NSString to see this.
            let empty = turn.toolCalls.isEmpty && turn.text.unicodeScalars.allSatisfy(CharacterSet.whitespacesAndNewlines.contains)
            guard !problems.isEmpty || (empty && turn.finishReason != "length") else { break }
            if !problems.isEmpty {
                logger.warning("invalid tool call from the model", metadata: ["run_id": "\(plan.run.id)", "attempt": "\(attempt)", "problems": "\(problems)"])
            }
            if attempt == Self.toolCallAttempts {
                if !problems.isEmpty, plan.constrained, turn.finishReason == "length" {
                    // A constrained answer cut off by the output limit every time: the run ends
                    // `incomplete` (conclude), its unfinished JSON (held back, never streamed) dropped.
                    turn.text = ""
                    break
                }
                guard problems.isEmpty else {
                    // The run fails: a message announced meanwhile is stored first, for its end to close.
                    try? await state.settle()
                    throw UpstreamError(code: "server_error", message: "The model made no valid tool call in \(attempt) attempts: \(problems.joined(separator: "; "))",
                                        retryable: false)
                }
                break
            }
            // Again as JSON where the upstream can constrain it: a call, or a reply that cannot be
            // empty; the last time, unless the run forces a call, a reply only (`auto` allows one).
            if plan.constrainable {
                if attempt + 1 == Self.toolCallAttempts && !plan.forced {
                    plan.constrain(to: ToolCallGuard.replyFormat)
                } else if !plan.constrained, let format = ToolCallGuard.responseFormat(functions: plan.offered, choice: plan.forced ? plan.choice : "auto") {
                    plan.constrain(to: format)
                }
            }
        }
        // A message announced while its insert committed is stored before anything else of the turn.
        try await state.settle()
        return (turn, state)
    }

    /// What the answer leads to: server-side tools run and the model goes again, the run waits
    /// for the client's tool outputs, completes, or ends `incomplete` at its token budget.
    @inline(never)
    private func conclude(_ plan: TurnPlan, answer: ChatTurn, state: TurnState) async throws -> TurnOutcome {
        var turn = answer
        let run = plan.run
        if turn.toolCalls.isEmpty { try await state.releaseBufferedText(turn.text) }
        if turn.usage == nil {
            turn.usage = Usage(prompt_tokens: plan.estimatedPromptTokens, completion_tokens: PromptBuilder.estimateTokens(turn.text))
        }
        if !turn.toolCalls.isEmpty {
            let serverCalls = turn.toolCalls.filter { plan.serverTools.contains($0.function.name) }
            var results: [String: JSONValue] = [:]
            for call in serverCalls {
                let started = ContinuousClock.now
                var outcome = "error"
                defer { AppMetrics.toolExecution(tool: call.function.name, outcome: outcome, duration: .now - started) }
                results[call.id] = try await withSpan("tool \(call.function.name)", ofKind: .internal) { span in
                    span.attributes["assistants.tool"] = call.function.name
                    span.attributes["assistants.run_id"] = run.id
                    if call.function.name == CodeInterpreterTool.name {
                        return try await codeInterpreter.run(callID: call.id, arguments: call.function.arguments, run: run,
                                                             project: plan.project, inputFileIDs: plan.codeFileIDs)
                    } else {
                        let tool = run.tools.first { $0["type"]?.stringValue == FileSearchTool.name } ?? [:]
                        return try await fileSearch.run(callID: call.id, arguments: call.function.arguments, tool: tool,
                                                        project: plan.project, vectorStoreIDs: plan.vectorStoreIDs)
                    }
                }
                outcome = "ok"
            }
            if !plan.vectorStoreIDs.isEmpty && serverCalls.contains(where: { $0.function.name == FileSearchTool.name }) {
                try await store.write(project: plan.project) { try await VectorStoreLibrary.touch(plan.vectorStoreIDs, session: $0) }
            }
            return try await toolCalls(known: plan.known, turn: turn, state: state, serverResults: results)
        } else if turn.finishReason == "length", run.max_completion_tokens != nil || plan.endpoint.maxOutputTokens != nil || plan.constrained {
            try await finishIncomplete(run, known: plan.known, lease: plan.start.lease, reason: "max_completion_tokens", turn: turn, state: state)
        } else {
            try await complete(run, known: plan.known, turn: turn, state: state, steps: plan.steps)
        }
        return .finished
    }

    /// How many times a turn is asked again when the model's tool call is invalid.
    static let toolCallAttempts = 3
    /// The token budget of a constrained (tool-call) turn.
    static let constrainedMaxTokens = 768

    /// Turns a constrained answer or text markup into calls, repairs arguments, and checks every
    /// call against its function's parameters; returns what is still wrong.
    static func settleToolCalls(_ turn: inout ChatTurn, constrained: Bool, functions: [JSONValue], serverTools: Set<String>) -> [String] {
        if constrained {
            let parsed = ToolCallGuard.parseConstrained(turn.text)
            if let call = parsed.call {
                turn.toolCalls = [call]
                turn.text = ""
            } else if let message = parsed.message {
                turn.text = message
            } else if turn.toolCalls.isEmpty {
                return ["the answer did not match the requested JSON schema"]
            }
        }
        let markup = ToolCallGuard.extractMarkup(turn.text)
        turn.text = markup.text
        turn.toolCalls += markup.calls
        let definitions: [JSONValue] = functions.map { ["type": "function", "function": $0["function"] ?? [:]] }
        var userCalls = turn.toolCalls.filter { !serverTools.contains($0.function.name) }
        let problems = ToolCallGuard.validate(&userCalls, functions: definitions)
        let repaired = Dictionary(userCalls.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        turn.toolCalls = turn.toolCalls.map { repaired[$0.id] ?? $0 }
        return problems
    }

    /// The model call of a turn: messages, the function tools, and the run's settings as resolved.
    /// A forcing `tool_choice` (`required`, a named tool) is released to `auto` once the run made a call.
    func chatRequest(for run: Run, messages: [JSONValue], madeCall: Bool) -> ChatRequest {
        var request = ChatRequest(messages: messages)
        var functions: [JSONValue] = run.tools.filter { $0["type"]?.stringValue == "function" }.map { tool in
            ["type": "function", "function": tool["function"] ?? [:]]
        }
        if run.tools.contains(where: { $0["type"]?.stringValue == FileSearchTool.name }) {
            functions.append(FileSearchTool.definition)
        }
        if run.tools.contains(where: { $0["type"]?.stringValue == CodeInterpreterTool.name }) {
            functions.append(CodeInterpreterTool.definition)
        }
        if !functions.isEmpty {
            request.tools = functions
            var choice = run.tool_choice
            if madeCall, choice.stringValue == "required" || choice.objectValue != nil { choice = "auto" }
            if let type = choice["type"]?.stringValue, type != "function" {
                choice = ["type": "function", "function": ["name": .string(type)]]
            }
            request.toolChoice = choice
            if !run.parallel_tool_calls { request.parallelToolCalls = false }
        }
        request.temperature = run.temperature
        request.topP = run.top_p
        if let format = run.response_format, format.objectValue != nil, format["type"]?.stringValue != "text" {
            request.responseFormat = format
        }
        request.reasoningEffort = run.reasoning_effort
        return request
    }

    /// The model called tools. Server-side ones (file_search) already ran: their results are in the
    /// step. Function calls, if any, make the run wait for the client's outputs; otherwise the step
    /// completes and the model takes another turn.
    private func toolCalls(known: Stored<Run>?, turn: ChatTurn, state: TurnState, serverResults: [String: JSONValue]) async throws -> TurnOutcome {
        try await state.closeMessage()
        let step = try await state.toolStep()
        let usage = turn.usage ?? Usage()
        let calls = turn.toolCalls
        let functionCalls = calls.filter { serverResults[$0.id] == nil }
        let goesOn = try await updates.recordToolCalls(calls, functionCalls: functionCalls, serverResults: serverResults, step: step,
                                                       usage: usage, known: known, lease: state.start.lease)
        return goesOn ? .again : .finished
    }

    /// The model answered: its message, the step and the run complete.
    private func complete(_ run: Run, known: Stored<Run>?, turn: ChatTurn, state: TurnState, steps: [RunStep]) async throws {
        try await state.ensureMessage(store: hub.hasListeners(runID: run.id))
        let stored = state.messageStored
        let usage = turn.usage ?? Usage()
        let text = turn.text
        let code = CodeInterpreterTool.outputs(of: steps)
        let annotations = (FileSearchTool.annotations(in: text, sources: FileSearchTool.sources(of: steps))
            + CodeInterpreterTool.annotations(in: text, files: code.files))
            .sorted { ($0["start_index"]?.intValue ?? 0) < ($1["start_index"]?.intValue ?? 0) }
        let images: [JSONValue] = code.images.map { ["type": "image_file", "image_file": ["file_id": .string($0), "detail": "auto"]] }
        try await state.publishAnnotations(annotations)
        var message = state.message
        message?.content = [Message.textPart(text, annotations: annotations)] + images
        try await updates.complete(message: message, step: state.messageStep, stored: stored, usage: usage, startedAt: run.started_at,
                                   known: known, lease: state.start.lease)
    }

    /// A token budget ran out: the run ends `incomplete`, its message too.
    private func finishIncomplete(_ run: Run, known: Stored<Run>?, lease: RunLease, reason: String, turn: ChatTurn?, state: TurnState?) async throws {
        if let state, turn != nil { try await state.ensureMessage() }
        let usage = turn?.usage ?? Usage()
        let text = turn?.text ?? ""
        var message = state?.message
        message?.content = [Message.textPart(text)]
        try await updates.finishIncomplete(reason: reason, message: message, step: state?.messageStep, usage: usage,
                                           startedAt: run.started_at, known: known, lease: lease)
    }
}
