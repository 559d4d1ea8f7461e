import Foundation
import Logging

/// Drives one run forward: model turns until the run completes, waits for tool outputs
/// (`requires_action`) or fails. Every state change is written before its event is published.
struct RunExecutor {
    let store: ObjectStore
    let client: ChatCompletionsClient
    let router: ModelRouter
    let hub: RunEventHub
    let logger: Logger

    var updates: RunUpdates { RunUpdates(store: store, hub: hub) }

    /// What went wrong in a way that ends the run `incomplete`.
    struct Incomplete: Error {
        var reason: String
    }

    /// Takes a queued (or resumed in_progress) run through one model turn.
    func execute(runID: String, project: String) async throws {
        let now = unixNow()
        var cancelling = false
        guard let run = try await updates.update(runID, project: project, { run, _ in
            if run.status == .cancelling {
                cancelling = true
                return false
            }
            guard run.status == .queued || run.status == .in_progress else { return false }
            run.status = .in_progress
            if run.started_at == nil { run.started_at = now }
            return true
        }) else {
            if cancelling { try await updates.end(runID, project: project, as: .cancelled) }
            return
        }
        updates.publish(run, "thread.run.in_progress")

        guard let endpoint = router.endpoint(for: run.model) else {
            let message = router.isConfigured
                ? "No model upstream serves the model '\(run.model)': add it to the models file (--models-config)."
                : "No model upstream is configured: set ASSISTANTS_UPSTREAM_URL (an OpenAI-compatible base URL ending in /v1) and, if it needs one, ASSISTANTS_UPSTREAM_API_KEY."
            try await updates.end(runID, project: project, as: .failed, error: LastError(code: "server_error", message: message))
            return
        }
        let (messages, steps) = try await store.read(project: project) { session in
            (try await session.all(Message.self, parentID: run.thread_id), try await session.all(RunStep.self, parentID: run.id))
        }
        let prompt = PromptBuilder.build(run: run, threadMessages: messages, steps: steps, contextWindow: endpoint.contextWindow)
        if prompt.overBudget, run.max_prompt_tokens != nil {
            try await finishIncomplete(run, project: project, reason: "max_prompt_tokens", turn: nil, state: nil)
            return
        }
        let usedCompletion = run.usage?.completion_tokens ?? 0
        var body = requestBody(for: run, messages: prompt.messages)
        if let limit = run.max_completion_tokens {
            let remaining = limit - usedCompletion
            if remaining <= 0 {
                try await finishIncomplete(run, project: project, reason: "max_completion_tokens", turn: nil, state: nil)
                return
            }
            body["max_tokens"] = .int(remaining)
        }

        let state = TurnState(run: run, project: project, store: store, hub: hub)
        var turn = try await client.complete(body: body, endpoint: endpoint) { delta in
            try await state.handle(delta)
        }
        if turn.usage == nil {
            turn.usage = Usage(prompt_tokens: prompt.estimatedTokens, completion_tokens: PromptBuilder.estimateTokens(turn.text))
        }

        if !turn.toolCalls.isEmpty {
            try await requireAction(run, project: project, turn: turn, state: state)
        } else if turn.finishReason == "length", run.max_completion_tokens != nil {
            try await finishIncomplete(run, project: project, reason: "max_completion_tokens", turn: turn, state: state)
        } else {
            try await complete(run, project: project, turn: turn, state: state)
        }
    }

    /// The chat-completions body: messages, the function tools, and the run's sampling settings.
    func requestBody(for run: Run, messages: [JSONValue]) -> [String: JSONValue] {
        var body: [String: JSONValue] = ["messages": .array(messages)]
        let functions = run.tools.filter { $0["type"]?.stringValue == "function" }
        if !functions.isEmpty {
            body["tools"] = .array(functions.map { tool in ["type": "function", "function": tool["function"] ?? [:]] })
            body["tool_choice"] = run.tool_choice
            if !run.parallel_tool_calls { body["parallel_tool_calls"] = false }
        }
        if let temperature = run.temperature { body["temperature"] = .double(temperature) }
        if let topP = run.top_p { body["top_p"] = .double(topP) }
        if let format = run.response_format, format.objectValue != nil, format["type"]?.stringValue != "text" {
            body["response_format"] = format
        }
        return body
    }

    /// The model called functions: the tool_calls step lists them and the run waits for their outputs.
    private func requireAction(_ run: Run, project: String, turn: ChatTurn, state: TurnState) async throws {
        try await state.closeMessage()
        let step = try await state.toolStep(calls: turn.toolCalls)
        let usage = turn.usage ?? Usage()
        let calls = turn.toolCalls
        let updated = try await store.write(project: project) { session -> Run? in
            var step = step
            step.step_details = ["type": "tool_calls", "tool_calls": .array(calls.map { call in
                ["id": .string(call.id), "type": "function",
                 "function": ["name": .string(call.function.name), "arguments": .string(call.function.arguments), "output": .null]]
            })]
            try await session.update(step)
            guard var run = try await session.get(Run.self, id: run.id), run.status == .in_progress else { return nil }
            run.status = .requires_action
            run.required_action = RequiredAction(toolCalls: calls)
            run.usage = (run.usage ?? Usage()) + usage
            try await session.update(run)
            return run
        }
        if let updated {
            updates.publish(updated, "thread.run.requires_action")
        } else {
            try await updates.end(run.id, project: project, as: .cancelled)
        }
    }

    /// The model answered: its message, the step and the run complete.
    private func complete(_ run: Run, project: String, turn: ChatTurn, state: TurnState) async throws {
        try await state.ensureMessage()
        let usage = turn.usage ?? Usage()
        let text = turn.text
        let now = unixNow()
        let outcome = try await store.write(project: project) { session -> (Run, Message?, RunStep?)? in
            guard var run = try await session.get(Run.self, id: run.id), run.status == .in_progress else { return nil }
            var message = state.message
            message?.content = [Message.textPart(text)]
            message?.status = .completed
            message?.completed_at = now
            var step = state.messageStep
            step?.status = .completed
            step?.completed_at = now
            step?.usage = usage
            if let message { try await session.update(message) }
            if let step { try await session.update(step) }
            run.status = .completed
            run.completed_at = now
            run.expires_at = nil
            run.usage = (run.usage ?? Usage()) + usage
            try await session.update(run)
            return (run, message, step)
        }
        guard let (finished, message, step) = outcome else {
            try await updates.end(run.id, project: project, as: .cancelled)
            return
        }
        if let message { hub.publish(runID: run.id, RunEvent(name: "thread.message.completed", encoding: message)) }
        if let step { hub.publish(runID: run.id, RunEvent(name: "thread.run.step.completed", encoding: step)) }
        updates.publish(finished, "thread.run.completed")
    }

    /// A token budget ran out: the run ends `incomplete`, its message too.
    private func finishIncomplete(_ run: Run, project: String, reason: String, turn: ChatTurn?, state: TurnState?) async throws {
        if let state, turn != nil { try await state.ensureMessage() }
        let usage = turn?.usage ?? Usage()
        let text = turn?.text ?? ""
        let now = unixNow()
        let outcome = try await store.write(project: project) { session -> (Run, Message?, RunStep?)? in
            guard var run = try await session.get(Run.self, id: run.id), run.status == .in_progress else { return nil }
            var message = state?.message
            message?.content = [Message.textPart(text)]
            message?.status = .incomplete
            message?.completed_at = nil
            message?.incomplete_at = now
            message?.incomplete_details = IncompleteDetails(reason: "max_tokens")
            var step = state?.messageStep
            step?.status = .completed
            step?.completed_at = now
            step?.usage = usage
            if let message { try await session.update(message) }
            if let step { try await session.update(step) }
            run.status = .incomplete
            run.incomplete_details = IncompleteDetails(reason: reason)
            run.expires_at = nil
            run.usage = (run.usage ?? Usage()) + usage
            try await session.update(run)
            return (run, message, step)
        }
        guard let (finished, message, step) = outcome else { return }
        if let message { hub.publish(runID: run.id, RunEvent(name: "thread.message.incomplete", encoding: message)) }
        if let step { hub.publish(runID: run.id, RunEvent(name: "thread.run.step.completed", encoding: step)) }
        updates.publish(finished, "thread.run.incomplete")
    }
}
