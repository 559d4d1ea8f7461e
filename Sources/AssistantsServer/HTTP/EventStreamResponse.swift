import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// A `text/event-stream` response that forwards a run's events as `event:`/`data:` frames,
/// with keep-alive comments on long silences, and ends with `event: done` / `data: [DONE]`.
/// A client that goes away only stops its own stream: the run goes on.
enum EventStreamResponse {
    static let keepAliveInterval: Duration = .seconds(15)

    private enum Item: Sendable {
        case event(RunEvent)
        case keepAlive
        case end
    }

    /// `leading` events are written first (e.g. `thread.created`), then the run's events until one ends the stream.
    static func make(leading: [RunEvent] = [], events: AsyncStream<RunEvent>) -> Response {
        let headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
            .init("X-Accel-Buffering")!: "no",
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let (items, continuation) = AsyncStream.makeStream(of: Item.self)
            let lastEvent = NIOLockedValueBox(ContinuousClock.now)
            let forwarder = Task {
                for await event in events {
                    lastEvent.withLockedValue { $0 = .now }
                    continuation.yield(.event(event))
                }
                continuation.yield(.end)
            }
            // A comment only after a silence of the full interval.
            let ticker = Task {
                while !Task.isCancelled {
                    let due = lastEvent.withLockedValue { $0 } + keepAliveInterval
                    try? await Task.sleep(until: due, clock: .continuous)
                    if ContinuousClock.now >= lastEvent.withLockedValue({ $0 }) + keepAliveInterval {
                        lastEvent.withLockedValue { $0 = .now }
                        continuation.yield(.keepAlive)
                    }
                }
            }
            AppMetrics.streamsOpen.increment()
            defer {
                AppMetrics.streamsOpen.decrement()
                forwarder.cancel()
                ticker.cancel()
                continuation.finish()
            }
            for event in leading {
                try await writer.write(frame(event))
            }
            loop: for await item in items {
                switch item {
                case .event(let event):
                    try await writer.write(frame(event))
                    if event.endsStream { break loop }
                case .keepAlive:
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                case .end:
                    break loop
                }
            }
            try await writer.write(ByteBuffer(string: "event: done\ndata: [DONE]\n\n"))
            try await writer.finish(nil)
        })
    }

    static func frame(_ event: RunEvent) -> ByteBuffer {
        ByteBuffer(string: "event: \(event.name)\ndata: \(event.data)\n\n")
    }
}
