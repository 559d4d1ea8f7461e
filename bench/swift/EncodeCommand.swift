import ArgumentParser
import AssistantsServer
import Foundation

/// `assistants-bench encode`: how long the server's encoder takes to write the objects a streamed
/// run stores and announces (a run, its message, its step), per object, in this process.
struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Time JSONCoding.string on a run, a message and a run step.")

    @Option(help: "Encodes of each object per round.") var count = 100_000
    @Option(help: "Rounds; the best is printed, with the median.") var rounds = 5

    func run() throws {
        var run = Run(id: "run_" + String(repeating: "a", count: 24), created_at: 1_700_000_000, thread_id: "thread_" + String(repeating: "b", count: 24),
                      assistant_id: "asst_" + String(repeating: "c", count: 24), model: "gpt-4o", instructions: "You are a helpful assistant.")
        run.tools = [["type": "function", "function": ["name": "get_weather", "parameters": ["type": "object", "properties": ["city": ["type": "string"]]]]]]
        run.metadata = ["user": "42"]
        run.temperature = 1
        run.top_p = 1
        run.usage = Usage(prompt_tokens: 31, completion_tokens: 60)
        var message = Message(id: "msg_" + String(repeating: "d", count: 24), created_at: 1_700_000_001, thread_id: run.thread_id,
                              role: "assistant", content: [Message.textPart(String(repeating: "token ", count: 60))])
        message.assistant_id = run.assistant_id
        message.run_id = run.id
        message.attachments = []
        let step = RunStep(id: "step_" + String(repeating: "e", count: 24), created_at: 1_700_000_001, run: run, type: "message_creation",
                           step_details: ["type": "message_creation", "message_creation": ["message_id": .string(message.id)]])
        try time("thread.run", run)
        try time("thread.message", message)
        try time("thread.run.step", step)
    }

    private func time(_ name: String, _ value: some Encodable) throws {
        let bytes = try JSONCoding.string(value).utf8.count
        var perEncode: [Double] = []
        var sink = 0
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for _ in 0..<count { sink &+= try JSONCoding.string(value).utf8.count }
            let elapsed = ContinuousClock.now - start
            perEncode.append((Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(count))
        }
        perEncode.sort()
        let best = perEncode[0], median = perEncode[perEncode.count / 2]
        print("\(name) (\(bytes) bytes): best \(String(format: "%.2f", best)) us, median \(String(format: "%.2f", median)) us per encode (\(sink > 0 ? count : 0) x \(rounds))")
    }
}
