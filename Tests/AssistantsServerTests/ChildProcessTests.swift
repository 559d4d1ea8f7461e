import Foundation
import Testing
@testable import AssistantsServer

/// Child processes run through swift-subprocess: the sandbox's pipe (`SandboxProcess`), system
/// tools (`ProcessRunner`), and the bound on how many long ones run at once (`Offload.children`, a `PermitGate`).
@Suite struct ChildProcessTests {
    /// A request far larger than a pipe's buffer (64 KiB) goes through while the child echoes it back.
    @Test func aRequestLargerThanThePipeBufferIsWrittenAndAnswered() async throws {
        let child = try await SandboxProcess.start(executable: "/bin/cat", arguments: [])
        let line = String(repeating: "x", count: 1024 * 1024)
        child.send(Array((line + "\n" + "second\n").utf8))
        var iterator = child.lines.makeAsyncIterator()
        let first = await iterator.next()
        let second = await iterator.next()
        #expect(first?.count == line.count)
        #expect(second == "second")
        child.stop()
        #expect(await iterator.next() == nil)
        #expect(!child.isRunning)
    }

    /// Stopping a child that never exits by itself kills it: its output ends.
    @Test func stopKillsAChildThatWouldRunOn() async throws {
        let child = try await SandboxProcess.start(executable: "/bin/sleep", arguments: ["600"])
        #expect(child.isRunning)
        child.stop()
        var iterator = child.lines.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        #expect(!child.isRunning)
    }

    @Test func aProgramThatCannotBeStartedThrows() async throws {
        await #expect(throws: (any Error).self) {
            _ = try await SandboxProcess.start(executable: "/nonexistent/program", arguments: [])
        }
    }

    /// The output and exit status of a tool; one past its time limit is killed (SIGKILL).
    @Test func toolOutputStatusAndTimeout() async throws {
        let echo = try await ProcessRunner.run("printf", arguments: ["a%sb", "-"], timeout: .seconds(30))
        #expect(echo.status == 0)
        #expect(echo.text == "a-b")
        let failing = try await ProcessRunner.run("false", arguments: [], timeout: .seconds(30))
        #expect(failing.status == 1)
        let hung = try await ProcessRunner.run("sleep", arguments: ["600"], timeout: .milliseconds(200))
        #expect(hung.status == 128 + SIGKILL)
    }

    /// At most `limit` bodies run at once; the others wait and all finish.
    @Test func theLimiterBoundsConcurrency() async throws {
        let limiter = PermitGate(limit: 2)
        let counter = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await limiter.withPermit {
                        await counter.enter()
                        try await Task.sleep(for: .milliseconds(20))
                        await counter.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await counter.peak == 2)
        #expect(await counter.finished == 8)
    }

    /// Counts bodies running at once.
    actor Counter {
        var running = 0
        var peak = 0
        var finished = 0

        func enter() {
            running += 1
            peak = max(peak, running)
        }

        func leave() {
            running -= 1
            finished += 1
        }
    }
}
