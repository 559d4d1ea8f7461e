import Foundation
import Testing
@testable import AssistantsServer

/// The code_interpreter pieces that need no sandbox: the embedded kernel, arguments, outputs, links.
@Suite struct CodeInterpreterTests {
    @Test func embeddedKernelMatchesSandboxKernel() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("sandbox/kernel.py")
        let file = try String(contentsOf: source, encoding: .utf8)
        // scripts/embed-sandbox.sh regenerates the Swift copy; the file's last newline is not part of the literal.
        #expect(SandboxKernelSource.text + "\n" == file || SandboxKernelSource.text == file)
    }

    @Test func sandboxCommandIsolatesEverything() throws {
        let sandbox = try Sandbox(dataDirectory: TestSupport.temporaryDirectory())
        let arguments = sandbox.arguments(sessionDirectory: "/tmp/session")
        #expect(arguments.first == "-i")
        for flag in ["--unshare-all", "--unshare-user", "--die-with-parent", "--clearenv", "--new-session", "--cap-drop"] {
            #expect(arguments.contains(flag), "\(flag)")
        }
        #expect(!arguments.contains("/etc/shadow"))
        #expect(arguments.contains("--nproc=64"))
        let bind = try #require(arguments.firstIndex(of: "--bind"))
        #expect(arguments[bind + 1] == "/tmp/session" && arguments[bind + 2] == "/mnt/data")
    }

    @Test func codeFromArguments() {
        #expect(CodeInterpreterTool.code(fromArguments: #"{"code":"print(1)"}"#) == "print(1)")
        #expect(CodeInterpreterTool.code(fromArguments: "print(2)") == "print(2)")
    }

    @Test func savedFilesAndImagesAreFoundInSteps() {
        let run = Run(id: "run_1", created_at: 0, thread_id: "thread_1", assistant_id: "asst_1", model: "m", instructions: "")
        let step = RunStep(id: "step_1", created_at: 0, run: run, type: "tool_calls", step_details: [
            "type": "tool_calls",
            "tool_calls": [["id": "call_1", "type": "code_interpreter", "code_interpreter": ["input": "x", "outputs": [
                ["type": "logs", "logs": "42\n[saved /mnt/data/out.csv as file-1]\n[saved /mnt/data/plot.png as file-2]"],
                ["type": "image", "image": ["file_id": "file-2"]],
            ]]]],
        ])
        let outputs = CodeInterpreterTool.outputs(of: [step])
        #expect(outputs.files == ["out.csv": "file-1", "plot.png": "file-2"])
        #expect(outputs.images == ["file-2"])
        let text = "Get it at sandbox:/mnt/data/out.csv."
        let annotations = CodeInterpreterTool.annotations(in: text, files: outputs.files)
        #expect(annotations.count == 1)
        #expect(annotations[0]["text"]?.stringValue == "sandbox:/mnt/data/out.csv")
        #expect(annotations[0]["file_path"]?["file_id"]?.stringValue == "file-1")
        #expect(annotations[0]["end_index"]?.intValue == text.unicodeScalars.count - 1)
    }
}
