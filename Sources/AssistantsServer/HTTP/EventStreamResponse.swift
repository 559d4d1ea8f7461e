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
            for event in leading {
                try await writer.write(frame(event))
            }
            loop: for await item in events.items {
                switch item {
                case .event(let event):
                    try await writer.write(frame(event))
                    if event.endsStream { break loop }
                case .keepAlive:
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
            }
            try await writer.write(ByteBuffer(string: "event: done\ndata: [DONE]\n\n"))
            try await writer.finish(nil)
        })
    }

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
