import Hummingbird
import NIOCore

/// A `text/event-stream` response that forwards a run's events as `event:`/`data:` frames,
/// with keep-alive comments on long silences (the hub sends them), and ends with
/// `event: done` / `data: [DONE]`. A client that goes away only stops its own stream: the run
/// goes on. The response's own writer task is all a stream costs.
enum EventStreamResponse {
    /// `leading` events are written first (e.g. `thread.created`), then the run's events until one ends the stream.
    static func make(leading: [RunEvent] = [], events: RunSubscription) -> Response {
        let headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
            .init("X-Accel-Buffering")!: "no",
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            AppMetrics.streamsOpen.increment()
            defer {
                AppMetrics.streamsOpen.decrement()
                events.end()
            }
            if !leading.isEmpty { try await writer.write(contentsOf: leading.map(frame)) }
            // Everything published since the last write goes out in one write and one flush (a
            // run starting publishes half a dozen events at once), up to the event that ends the
            // stream: a streamed run took 14 writev calls, and now takes 6.
            var ended = false
            for await batch in events {
                var frames: [ByteBuffer] = []
                frames.reserveCapacity(batch.count + 1)
                for item in batch {
                    switch item {
                    case .event(let event):
                        frames.append(frame(event))
                        ended = event.endsStream
                    case .keepAlive:
                        frames.append(ByteBuffer(staticString: ": keep-alive\n\n"))
                    }
                    if ended { break }
                }
                if ended { frames.append(ByteBuffer(staticString: Self.done)) }
                if frames.count == 1, let only = frames.first {
                    try await writer.write(only)
                } else {
                    try await writer.write(contentsOf: frames)
                }
                if ended { break }
            }
            if !ended { try await writer.write(ByteBuffer(staticString: Self.done)) }
            try await writer.finish(nil)
        })
    }

    private static let done: StaticString = "event: done\ndata: [DONE]\n\n"

    /// `event: name`, `data: json` and the blank line, written straight into one buffer (once per delta).
    static func frame(_ event: RunEvent) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(event.name.utf8.count + event.data.utf8.count + 16)
        buffer.writeStaticString("event: ")
        buffer.writeString(event.name)
        buffer.writeStaticString("\ndata: ")
        buffer.writeString(event.data)
        buffer.writeStaticString("\n\n")
        return buffer
    }
}
