import Foundation
import Testing
@testable import AssistantsServer

/// The engine's handling of answers llama-server really gave SmolLM2 (bench/recorded, issue 7).
@Suite struct RecordedUpstreamTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("bench/recorded")

    /// The recorded non-streamed answer, run through the same accumulator as a live one.
    func turn(_ name: String) async throws -> ChatTurn {
        let data = try Data(contentsOf: Self.directory.appendingPathComponent(name))
        let record = try JSONCoding.decoder.decode(JSONValue.self, from: data)
        let response = try #require(record["response"])
        var accumulator = TurnAccumulator()
        try await accumulator.add(try ChatChunk(json: response)) { _ in }
        return accumulator.turn
    }

    @Test func schemaConstrainedAnswerBecomesAValidCall() async throws {
        var turn = try await turn("response_format_json_schema.json")
        let problems = RunExecutor.settleToolCalls(&turn, constrained: true, functions: [ToolCallGuardTests.primes], serverTools: [])
        #expect(problems.isEmpty)
        #expect(turn.toolCalls.count == 1)
        #expect(turn.toolCalls.first?.function.name == "add_prime_numbers")
        let arguments = try JSONCoding.decode(JSONValue.self, from: turn.toolCalls.first?.function.arguments ?? "")
        #expect(arguments["prime_numbers"] == [2, 3, 5, 7])
    }

    @Test func prefilledToolCallsAreValidated() async throws {
        var turn = try await turn("tools_required_prefill.json")
        #expect(!turn.toolCalls.isEmpty)
        let problems = RunExecutor.settleToolCalls(&turn, constrained: false, functions: [ToolCallGuardTests.primes], serverTools: [])
        #expect(problems.isEmpty)
    }

    @Test func unconstrainedProseHasNoCallAndNoMarkup() async throws {
        var turn = try await turn("tools_auto.json")
        let problems = RunExecutor.settleToolCalls(&turn, constrained: false, functions: [ToolCallGuardTests.primes], serverTools: [])
        #expect(problems.isEmpty && turn.toolCalls.isEmpty)
        #expect(!turn.text.contains("<tool_call>"))
    }
}
