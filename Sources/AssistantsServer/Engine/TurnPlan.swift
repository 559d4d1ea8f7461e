/// The run as its next turn takes it: as started, or as read again after server-side tools ran.
/// A class, so that the frames that wait on the model hold a reference, not the run by value.
final class RunProgress {
    private(set) var run: Run
    /// The run as stored last, for the final read-modify-write to skip decoding it again.
    private(set) var known: Stored<Run>?
    let start: RunStart

    init(run: Run, known: Stored<Run>?, start: RunStart) {
        self.run = run
        self.known = known
        self.start = start
    }

    /// Reads the run again after a turn of server-side tools; false when it is no longer in progress.
    func reread(from store: ObjectStore) async throws -> Bool {
        let runID = start.lease.runID
        guard let current = try await store.read(project: start.lease.project, { try await $0.getStored(Run.self, id: runID) }),
              current.object.status == .in_progress
        else { return false }
        run = current.object
        known = current
        return true
    }
}

/// What one model turn asks for: the request (constrained to JSON for small models, and again
/// on a retry), the run's tools, and what the thread held when the turn began. One object that
/// the turn's steps share, so that the frames waiting on the model stay small: a task keeps the
/// deepest stack of frames it ever had until it ends, and a streamed run's task lives as long as
/// its answer streams.
final class TurnPlan {
    let run: Run
    let known: Stored<Run>?
    let start: RunStart
    let project: String
    let endpoint: UpstreamEndpoint
    /// The run's steps before this turn.
    let steps: [RunStep]
    let vectorStoreIDs: [String]
    let codeFileIDs: [String]
    /// The prompt's size as estimated, for an upstream that reports no usage.
    let estimatedPromptTokens: Int
    /// The tools the server runs itself (file_search, code_interpreter).
    let serverTools: Set<String>
    /// The client's function tools.
    let userFunctions: [JSONValue]
    /// The tools the request offers the model, before any constraint.
    let offered: [JSONValue]
    /// The run forces a call: `required` or a named tool.
    let forced: Bool
    /// The upstream is asked for calls as JSON matching a schema (small models), where it applies.
    let constrainable: Bool
    /// The tool choice a constrained turn asks for: small models almost never choose a tool on
    /// their own, so on a run's first turn `auto` asks for a call.
    let choice: JSONValue
    private(set) var request: ChatRequest
    private(set) var constrained = false

    init(progress: RunProgress, project: String, endpoint: UpstreamEndpoint, request: ChatRequest, madeCall: Bool,
         steps: [RunStep], vectorStoreIDs: [String], codeFileIDs: [String], estimatedPromptTokens: Int) {
        let run = progress.run
        self.run = run
        self.known = progress.known
        self.start = progress.start
        self.project = project
        self.endpoint = endpoint
        self.request = request
        self.steps = steps
        self.vectorStoreIDs = vectorStoreIDs
        self.codeFileIDs = codeFileIDs
        self.estimatedPromptTokens = estimatedPromptTokens
        serverTools = Set(run.tools.compactMap { $0["type"]?.stringValue }.filter { $0 == FileSearchTool.name || $0 == CodeInterpreterTool.name })
        userFunctions = run.tools.filter { $0["type"]?.stringValue == "function" }
        offered = request.tools
        forced = request.toolChoice?.stringValue == "required" || request.toolChoice?.objectValue != nil
        constrainable = endpoint.constrainToolCalls && !request.tools.isEmpty && run.tool_choice.stringValue != "none"
        choice = !madeCall && run.tool_choice.stringValue == "auto" ? "required" : (request.toolChoice ?? "auto")
    }

    /// Asks for the turn as JSON matching `format` instead of free text with native tool calls.
    func constrain(to format: JSONValue) {
        constrained = true
        request.responseFormat = format
        // A call is short; a model looping inside the JSON is cut off and asked again.
        request.maxOutputTokens = min(request.maxOutputTokens ?? RunExecutor.constrainedMaxTokens, RunExecutor.constrainedMaxTokens)
        request.tools = []
        request.toolChoice = nil
        request.parallelToolCalls = nil
    }
}
