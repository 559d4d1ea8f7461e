import Hummingbird

/// `/v1/threads/{thread_id}/runs/{run_id}/steps`: list and retrieve.
struct RunStepsController {
    let store: ObjectStore

    func addRoutes(to group: RouterGroup<APIRequestContext>) {
        group.get("threads/:thread_id/runs/:run_id/steps", use: list)
        group.get("threads/:thread_id/runs/:run_id/steps/:step_id", use: retrieve)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        let runID = try context.parameters.require("run_id")
        let page = try ListQuery.page(from: request)
        let include = try Self.includesContent(request)
        var result = try await store.read(project: context.project) { session in
            _ = try await Runs.find(runID, in: threadID, session: session)
            return try await session.list(.runStep, parentID: runID, page: page)
        }
        if !include {
            result.bodies = try result.bodies.map { body in
                guard body.contains("\"file_search\"") else { return body }
                return try JSONCoding.string(JSONCoding.decode(RunStep.self, from: body).forClient(includeSearchContent: false))
            }
        }
        return .json(result.json)
    }

    @Sendable func retrieve(_ request: Request, context: APIRequestContext) async throws -> Response {
        let threadID = try context.parameters.require("thread_id")
        let runID = try context.parameters.require("run_id")
        let stepID = try context.parameters.require("step_id")
        let step = try await store.read(project: context.project) { session -> RunStep in
            _ = try await Runs.find(runID, in: threadID, session: session)
            guard let step = try await session.get(RunStep.self, id: stepID), step.run_id == runID else {
                throw APIError.notFound("run step", id: stepID)
            }
            return step
        }
        return try .json(encoding: step.forClient(includeSearchContent: try Self.includesContent(request)))
    }

    /// Whether `include[]` asks for file_search result content; any other value is a 400.
    static func includesContent(_ request: Request) throws -> Bool {
        let values = request.queryValues("include[]") + request.queryValues("include")
        for value in values where value != RunStep.includeSearchContent {
            throw APIError.invalidRequest(
                "Invalid value: '\(value)'. Supported values are: '\(RunStep.includeSearchContent)'.", param: "include", code: "invalid_value")
        }
        return !values.isEmpty
    }
}
