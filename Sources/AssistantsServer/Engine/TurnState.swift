/// The objects one model turn creates as its output streams in: the assistant message and its
/// message_creation step at the first text, the tool_calls step at the first tool call.
/// Each is stored when created (the message of a turn nobody streams once it has streamed for
/// `storeAfter`), and each fragment is published to the run's listeners. A streamed message is
/// announced, with its first text, while its insert commits (`pendingInsert`): every later write
/// of it, and the turn's end, wait for that insert first.
final class TurnState {
    let run: Run
    let store: ObjectStore
    let hub: RunEventHub
    private(set) var message: Message?
    private(set) var messageStep: RunStep?
    private var toolCallsStep: RunStep?
    private var sentFirstText = false
    /// The text streamed so far.
    private(set) var text = ""

    /// Tools the server runs itself (file_search): their calls stream as their own tool-call type.
    let serverTools: Set<String>
    private var serverCallIndexes: Set<Int> = []

    /// Holds text back instead of streaming it, for models whose text may turn out to be a tool call.
    let bufferText: Bool

    /// The run's start, recorded before anything the turn makes is stored.
    let start: RunStart

    init(run: Run, store: ObjectStore, hub: RunEventHub, start: RunStart, serverTools: Set<String> = [], bufferText: Bool = false) {
        self.start = start
        self.serverTools = serverTools
        self.bufferText = bufferText
        self.run = run
        self.store = store
        self.hub = hub
    }

    func handle(_ delta: ChatDelta) async throws {
        switch delta {
        case .text(let chunk):
            if bufferText {
                text += chunk
                return
            }
            let listened = hub.hasListeners(runID: run.id)
            let now = ContinuousClock.now
            let since = firstTextAt ?? now
            firstTextAt = since
            // Stored at once for a stream's listeners; for pollers once the answer has streamed a while.
            let persist = listened || now - since >= Self.storeAfter
            if needsMessageWork(store: persist) {
                // Once a turn, with deep frames: in a child task (see `inChildTask`).
                try await inChildTask { try await ensureMessage(store: persist, announceBeforeStored: listened) }
            }
            text += chunk
            // The id alone: binding the whole message would copy it (and retain its every field) per delta.
            guard listened, let messageID = message?.id else { return }
            let first = !sentFirstText
            sentFirstText = true
            hub.publish(runID: run.id, RunEvent(.messageDelta, data: Self.textDelta(messageID: messageID, text: chunk, first: first)))
        case .toolCall(let index, let id, let name, let arguments):
            try await handleToolCall(index: index, id: id, name: name, arguments: arguments)
        }
    }

    /// A tool call's fragment: closes the message, opens the tool_calls step, and streams the
    /// call. Out of line, so that the frame of a text delta stays small.
    @inline(never)
    private func handleToolCall(index: Int, id: String?, name: String?, arguments: String) async throws {
        try await closeMessage()
        let step = try await toolStep()
        if let name, serverTools.contains(name) { serverCallIndexes.insert(index) }
        guard hub.hasListeners(runID: run.id) else { return }
        var call: JSONValue = ["index": .int(index), "type": "function", "function": ["arguments": .string(arguments)]]
        if serverCallIndexes.contains(index) {
            // A server-side tool's arguments are not the client's business: announce the call once.
            guard let id else { return }
            let toolName = name ?? FileSearchTool.name
            call = ["index": .int(index), "id": .string(id), "type": .string(toolName), toolName: [:]]
        } else if let id {
            call = ["index": .int(index), "id": .string(id), "type": "function",
                    "function": ["name": .string(name ?? ""), "arguments": .string(arguments), "output": .null]]
        }
        let event: JSONValue = [
            "id": .string(step.id), "object": "thread.run.step.delta",
            "delta": ["step_details": ["type": "tool_calls", "tool_calls": [call]]],
        ]
        hub.publish(runID: run.id, RunEvent(.stepDelta, data: event.jsonString))
    }

    /// Whether the message and its step are in the database yet.
    private(set) var messageStored = false
    /// The insert of a streamed message and its step, under way while its text streams (see
    /// `ensureMessage(store:announceBeforeStored:)`); `settle()` waits for it.
    private var pendingInsert: Task<Void, any Error>?
    /// When the turn's first text arrived.
    private var firstTextAt: ContinuousClock.Instant?
    /// How long an answer nobody streams may go on before its message is stored for pollers to
    /// see; a quicker answer is stored once, complete, with the run's end.
    static let storeAfter: Duration = .milliseconds(50)

    /// Whether `ensureMessage(store:)` has anything to do: no message yet, or one to store.
    private func needsMessageWork(store persist: Bool) -> Bool {
        message == nil || (persist && !messageStored && pendingInsert == nil)
    }

    /// Waits for the insert of a message announced before it was stored, if one is under way:
    /// afterwards `messageStored` says whether the message is in the database.
    func settle() async throws {
        guard let pending = pendingInsert else { return }
        pendingInsert = nil
        try await pending.value
        messageStored = true
    }

    /// Creates the assistant message and its step, if this turn has none yet, and stores them
    /// unless `store` is false (they are then stored later, at the latest with the run's end).
    /// With `announceBeforeStored` (a streamed turn's first text), their events go out at once
    /// and the insert commits meanwhile, so that the text does not wait for a commit: a client
    /// reading the message by id in that moment may not find it yet, and one whose server
    /// crashes in it finds the run ended without it.
    func ensureMessage(store persist: Bool = true, announceBeforeStored: Bool = false) async throws {
        try await settle()
        guard needsMessageWork(store: persist) else { return }
        if message != nil {
            try await storeMessage()
            return
        }
        let now = unixNow()
        var message = Message(id: IDPrefix.message.makeID(), created_at: now, thread_id: run.thread_id, role: "assistant", content: [])
        message.status = .in_progress
        message.completed_at = nil
        message.assistant_id = run.assistant_id
        message.run_id = run.id
        message.attachments = []
        let step = RunStep(
            id: IDPrefix.step.makeID(), created_at: now, run: run, type: "message_creation",
            step_details: ["type": "message_creation", "message_creation": ["message_id": .string(message.id)]])
        self.message = message
        self.messageStep = step
        if persist && announceBeforeStored {
            // Encoded here, once: the events carry what the insert stores.
            let json = try MessageRows.encode(message, step)
            let (store, start) = (store, start)
            pendingInsert = Task(executorPreference: EventLoopTaskExecutor.current) {
                try await MessageRows.insert(message, step, as: json, store: store, start: start)
            }
            hub.publish(runID: run.id, [.stepCreated, .stepInProgress], data: json.step)
            hub.publish(runID: run.id, [.messageCreated, .messageInProgress], data: json.message)
            return
        }
        let stored = persist ? try await storeMessage() : nil
        hub.publish(runID: run.id, [.stepCreated, .stepInProgress], data: stored?.step ?? RunEvent.data(encoding: step))
        hub.publish(runID: run.id, [.messageCreated, .messageInProgress], data: stored?.message ?? RunEvent.data(encoding: message))
    }

    /// The JSON a message and its step were just written as, which their events carry too.
    private typealias Written = (message: String, step: String?)

    /// Inserts the message and its step as they are now, if not stored yet.
    @discardableResult
    private func storeMessage() async throws -> Written? {
        try await settle()
        guard !messageStored, let message, let step = messageStep else { return nil }
        let json = try MessageRows.encode(message, step)
        try await MessageRows.insert(message, step, as: json, store: store, start: start)
        messageStored = true
        return (json.message, json.step)
    }

    /// Writes the message (and its step) as they are now: an update once stored, else the insert.
    @discardableResult
    private func saveMessage(withStep: Bool) async throws -> Written? {
        try await settle()
        guard messageStored else { return try await storeMessage() }
        guard let message else { return nil }
        let step = withStep ? messageStep : nil
        return try await store.write(under: start.lease) { session -> Written in
            let written = try await session.update(message)
            guard let step else { return (written, nil) }
            return (written, try await session.update(step))
        }
    }

    /// Starts the turn's message with text that was held back (one delta with all of it).
    func releaseBufferedText(_ finalText: String) async throws {
        guard bufferText, !finalText.isEmpty else { return }
        try await ensureMessage()
        text = finalText
        guard let message, hub.hasListeners(runID: run.id) else { return }
        sentFirstText = true
        hub.publish(runID: run.id, RunEvent(.messageDelta, data: Self.textDelta(messageID: message.id, text: finalText, first: true)))
    }

    /// The `thread.message.delta` of a text fragment, written straight to bytes: it is sent once
    /// per streamed token, and a JSONValue tree for it cost half a dozen allocations. The first
    /// fragment of a message carries its empty `annotations`, as the API's does.
    static func textDelta(messageID: String, text: String, first: Bool) -> String {
        var json: [UInt8] = []
        json.reserveCapacity(messageID.utf8.count + text.utf8.count + 128)
        json.append(contentsOf: #"{"id":"#.utf8)
        JSONText.writeString(messageID, to: &json)
        json.append(contentsOf: #","object":"thread.message.delta","delta":{"content":[{"index":0,"type":"text","text":{"value":"#.utf8)
        JSONText.writeString(text, to: &json)
        if first { json.append(contentsOf: #","annotations":[]"#.utf8) }
        json.append(contentsOf: "}}]}}".utf8)
        return String(decoding: json, as: UTF8.self)
    }

    /// Stores the text streamed so far into the open message (before the run ends it `incomplete`).
    func saveText() async throws {
        try await settle()
        guard var message, message.status == .in_progress, !text.isEmpty else { return }
        message.content = [Message.textPart(text)]
        self.message = message
        try await saveMessage(withStep: false)
    }

    /// Completes a message the model wrote before calling tools in the same turn.
    func closeMessage() async throws {
        guard var message, var step = messageStep, message.status == .in_progress else { return }
        let now = unixNow()
        message.content = [Message.textPart(text)]
        message.status = .completed
        message.completed_at = now
        step.status = .completed
        step.completed_at = now
        step.usage = Usage()
        let finishedMessage = message
        let finishedStep = step
        self.message = finishedMessage
        self.messageStep = finishedStep
        let written = try await saveMessage(withStep: true)
        hub.publish(runID: run.id, [.messageCompleted], data: written?.message ?? RunEvent.data(encoding: finishedMessage))
        hub.publish(runID: run.id, [.stepCompleted], data: written?.step ?? RunEvent.data(encoding: finishedStep))
    }

    /// Sends a message's annotations once, before it completes (the SDK merges them by index).
    func publishAnnotations(_ annotations: [JSONValue]) async throws {
        guard !annotations.isEmpty, let message, hub.hasListeners(runID: run.id) else { return }
        let indexed: [JSONValue] = annotations.enumerated().map { offset, annotation in
            guard case .object(var fields) = annotation else { return annotation }
            fields["index"] = .int(offset)
            return .object(fields)
        }
        let event: JSONValue = [
            "id": .string(message.id), "object": "thread.message.delta",
            "delta": ["content": [["index": 0, "type": "text", "text": ["annotations": .array(indexed)]]]],
        ]
        hub.publish(runID: run.id, RunEvent(.messageDelta, data: event.jsonString))
    }

    /// The turn's tool_calls step, created (and stored, and announced) on first use.
    func toolStep() async throws -> RunStep {
        if let toolCallsStep { return toolCallsStep }
        let step = RunStep(
            id: IDPrefix.step.makeID(), created_at: unixNow(), run: run, type: "tool_calls",
            step_details: ["type": "tool_calls", "tool_calls": []])
        try await start.ensureWritten()
        let written = try await store.write(under: start.lease) { try await $0.insert(step) }
        toolCallsStep = step
        hub.publish(runID: run.id, [.stepCreated, .stepInProgress], data: written)
        return step
    }
}

/// The insert of a turn's message and its message_creation step, whether the turn waits for it
/// or announces them meanwhile (a task of its own, hence not a member of `TurnState`).
private enum MessageRows {
    /// The message's and the step's JSON, as they are stored and their events carry them.
    static func encode(_ message: Message, _ step: RunStep) throws -> (message: String, step: String) {
        (try JSONCoding.string(message), try JSONCoding.string(step))
    }

    /// Inserts both as `json` (`encode`), once the run's start is recorded.
    static func insert(_ message: Message, _ step: RunStep, as json: (message: String, step: String),
                       store: ObjectStore, start: RunStart) async throws {
        try await start.ensureWritten()
        try await store.write(under: start.lease) { session in
            try await session.insert(step, body: json.step)
            try await session.insert(message, body: json.message)
        }
    }
}
