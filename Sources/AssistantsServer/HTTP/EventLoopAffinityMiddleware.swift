import Hummingbird

/// Runs each request on its connection's event loop: whatever thread its database calls resume
/// on, its code comes back there, and a run it starts is pinned there too (`RunEngine.schedule`),
/// so a streamed run's upstream call, its events and the client's connection share one thread.
struct EventLoopAffinityMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await withTaskExecutorPreference(context.loopExecutor) {
            try await next(request, context)
        }
    }
}
