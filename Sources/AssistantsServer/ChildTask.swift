/// Runs `body` in a child task and waits for it.
///
/// A task keeps the deepest stack of async frames it ever had until it ends: Swift's task
/// allocator keeps its slabs. A streamed run's task and its request's task live as long as the
/// answer streams, so the work with deep frames that comes before and after the stream (a
/// streamed request's handler, starting the run, planning a turn, creating its message,
/// concluding it) runs here, and its frames are freed when it returns. Measured with heaptrack
/// at 1,000 streams: frames of 10 to 16 KB in the run's task, kept per open stream.
///
/// The child inherits the task's executor preference, task locals and cancellation. `body` may
/// use the caller's non-Sendable state: the caller is suspended until the child returns, so the
/// two never run at once (hence the unchecked box). Never inlined: its `async let` storage
/// would be in the caller's frame.
@inline(never)
func inChildTask<T>(_ body: () async throws -> T) async throws -> T {
    try await withoutActuallyEscaping(body) { body in
        let work = UncheckedTransfer(body)
        async let result = UncheckedTransfer(try await work.value())
        return try await result.value
    }
}

/// A value handed to a child task and back while its owner waits (see `inChildTask`).
private struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
