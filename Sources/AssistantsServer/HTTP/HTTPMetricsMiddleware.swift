import Hummingbird

/// Counts and times every request by route pattern, method and status (`hb_requests`,
/// `http_server_request_duration`, as Hummingbird's own MetricsMiddleware names them), with the
/// metric handles cached per label set: looking them up in the metrics factory on every request
/// cost a fifth of the server's GET throughput.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            AppMetrics.httpRequest(route: context.endpointPath ?? "NotFound", method: request.method.rawValue,
                                   status: response.status.code, duration: .now - started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            AppMetrics.httpRequest(route: context.endpointPath ?? "NotFound", method: request.method.rawValue,
                                   status: status, duration: .now - started)
            throw error
        }
    }
}
