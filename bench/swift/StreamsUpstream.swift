import ArgumentParser
import Foundation
import Hummingbird
import NIOConcurrencyHelpers

/// A slow OpenAI-compatible upstream for bench/streams.sh: every streamed chat completion gets
/// a role chunk at once, then `deltas` content chunks, one every `interval` seconds after the
/// stream began, each `<t=NANOS>` (the wall clock just before it is written: the driver
/// subtracts it from the time it reads the delta), then a finish chunk, a usage chunk and
/// `data: [DONE]`. `GET /health`; `GET /stats` (streams open now, most at once, completed).
struct StreamsUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "streams-upstream",
                                                    abstract: "A slow streaming chat-completions upstream.")

    @Option(help: "The loopback port to listen on.") var port: Int
    @Option(help: "Content chunks per reply.") var deltas = 60
    @Option(help: "Seconds between chunks.") var interval = 1.0

    /// What the upstream has served.
    struct Stats: Codable {
        var open = 0
        var most_open = 0
        var completed = 0
    }

    func run() async throws {
        let stats = NIOLockedValueBox(Stats())
        let deltas = self.deltas
        let interval = Duration.nanoseconds(Int64(self.interval * 1e9))
        let router = Router()
        router.get("/health") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"],
                                                 body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))) }
        router.get("/stats") { _, _ in
            let body = try JSONEncoder().encode(stats.withLockedValue { $0 })
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.post("/v1/chat/completions") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 22)
            let fields = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            guard fields["stream"] as? Bool == true else {
                return Response(status: .badRequest, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"this upstream only streams"}}"#)))
            }
            let model = (fields["model"] as? String) ?? "bench"
            let created = Int(Date().timeIntervalSince1970)
            @Sendable func chunk(_ choices: String, usage: String? = nil) -> ByteBuffer {
                var json = #"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":\#(created),"model":"\#(model)","choices":\#(choices)"#
                if let usage { json += #","usage":\#(usage)"# }
                return ByteBuffer(string: "data: \(json)}\n\n")
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                stats.withLockedValue { $0.open += 1; $0.most_open = max($0.most_open, $0.open) }
                defer { stats.withLockedValue { $0.open -= 1 } }
                try await writer.write(chunk(#"[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#))
                let start = ContinuousClock.now
                for k in 1...max(deltas, 1) where k <= deltas {
                    try await Task.sleep(until: start + interval * k, clock: .continuous)
                    try await writer.write(chunk(#"[{"index":0,"delta":{"content":"<t=\#(wallNanos())>"},"finish_reason":null}]"#))
                }
                try await writer.write(chunk(#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#))
                try await writer.write(chunk("[]", usage: #"{"prompt_tokens":10,"completion_tokens":\#(deltas),"total_tokens":\#(10 + deltas)}"#))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
                stats.withLockedValue { $0.completed += 1 }
            })
        }
        let openFiles = raiseOpenFiles()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), backlog: 4096))
        printFlushed("streams upstream on 127.0.0.1:\(port): \(deltas) deltas every \(self.interval) s, open files \(openFiles)")
        try await app.runService()
    }
}
