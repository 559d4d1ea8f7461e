import Hummingbird

/// Runs the rest of the middleware chain and the handler in a child task, and hands their
/// response back to the request's own task to write. A streamed response is written by that
/// task for as long as the run streams, and a task keeps the deepest stack of frames it ever had
/// (see `inChildTask`): without this, every open stream kept the frames of each middleware and
/// of its handler, a slab of about 1 KB each (heaptrack, 1,000 streams).
struct ChildTaskMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await inChildTask { try await next(request, context) }
    }
}
