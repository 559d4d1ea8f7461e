import Foundation
import NIOCore

/// The code_interpreter tool of a run: offered to the model as a function taking Python code,
/// run in the thread's sandboxed session with the run's input files in /mnt/data; what the code
/// prints comes back as `logs`, images it makes become `image` outputs (and image_file parts of
/// the reply), other files it writes become files (`purpose: assistants_output`) that the reply
/// can link as `sandbox:/mnt/data/NAME` (a `file_path` annotation).
struct CodeInterpreterTool {
    static let name = "code_interpreter"

    static let definition: JSONValue = [
        "type": "function",
        "function": [
            "name": "code_interpreter",
            "description": "Run Python 3 code in a stateful, sandboxed session (like a Jupyter notebook: variables persist between calls). The user's files are in /mnt/data. Save files you make to /mnt/data to give them to the user; link them as sandbox:/mnt/data/NAME. plt.show() saves the chart. There is no internet access.",
            "parameters": [
                "type": "object",
                "properties": ["code": ["type": "string", "description": "The Python code to run."]],
                "required": ["code"],
            ],
        ],
    ]

    static let maxOutputFile = 100 * 1024 * 1024
    static let maxSavedPerExecution = 200 * 1024 * 1024
    static let maxSavedFiles = 100
    static let savedPrefix = "[saved /mnt/data/"

    let service: CodeInterpreterService
    let store: ObjectStore
    let blobs: any BlobStore

    static func code(fromArguments arguments: String) -> String {
        if let value = try? JSONCoding.decode(JSONValue.self, from: arguments) {
            if let code = value["code"]?.stringValue ?? value["input"]?.stringValue { return code }
            if let text = value.stringValue { return text }
        }
        return arguments
    }

    /// Runs one call in the thread's session and returns the step's tool-call object.
    func run(callID: String, arguments: String, run: Run, project: String, inputFileIDs: [String]) async throws -> JSONValue {
        let code = Self.code(fromArguments: arguments)
        let session = try await service.session(project: project, threadID: run.thread_id)
        try await stage(inputFileIDs, into: session.directory, project: project)
        let result = try await session.execute(code)
        var logs = [result.stdout, result.stderr, result.error].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "\n")
        var outputs: [JSONValue] = []
        let images = Set(result.images ?? [])
        var budget = Self.maxSavedPerExecution
        var kept = 0
        for file in result.files ?? [] {
            guard (file.size ?? 0) <= budget else {
                logs += (logs.isEmpty ? "" : "\n") + "[not saved: \(file.path) is over the \(Self.maxSavedPerExecution / (1024 * 1024)) MiB an execution may return]"
                continue
            }
            guard kept < Self.maxSavedFiles,
                  let (saved, path) = try await keep(file.path, from: session.directory, project: project,
                                                     maxBytes: min(Self.maxOutputFile, budget)) else { continue }
            kept += 1
            budget -= saved.bytes
            if images.contains(file.path) || file.path.lowercased().hasSuffix(".png") {
                outputs.append(["type": "image", "image": ["file_id": .string(saved.id)]])
            }
            logs += (logs.isEmpty ? "" : "\n") + "\(Self.savedPrefix)\(path) as \(saved.id)]"
        }
        return [
            "id": .string(callID),
            "type": "code_interpreter",
            "code_interpreter": ["input": .string(code), "outputs": .array([["type": "logs", "logs": .string(logs)]] + outputs)],
        ]
    }

    /// Copies the input files into the session folder under their own names (once). Each file is
    /// created exclusively without following links and handed to the sandbox user through its
    /// descriptor (`SandboxFolder.stage`): code left running in the session can't redirect it.
    private func stage(_ fileIDs: [String], into directory: String, project: String) async throws {
        var sources: [(name: String, path: String)] = []
        for fileID in fileIDs {
            guard let file = try await store.read(project: project, { try await $0.get(OpenAIFile.self, id: fileID) }),
                  let source = try await blobs.localPath(fileID: fileID) else { continue }
            let name = OpenAIFile.cleanFilename(file.filename)
            let staged = name.hasPrefix(".") ? "_" + name : name
            guard SandboxFolder.isPlainName(staged) else { continue }
            sources.append((staged, source))
        }
        guard !sources.isEmpty else { return }
        let files = sources
        try await Offload.run {
            let folder = try SandboxFolder(path: directory)
            for file in files {
                _ = try? folder.stage(name: file.name, from: file.path, owner: uid_t(Sandbox.uid))
            }
        }
    }

    /// Stores a file the code wrote: the reported path must be a plain name directly under /mnt/data,
    /// and is opened from the session folder's descriptor without following links, as a regular file.
    private func keep(_ sandboxPath: String, from directory: String, project: String, maxBytes limit: Int) async throws -> (file: OpenAIFile, path: String)? {
        // Only files at the top of /mnt/data are returned (as before); subfolders are the code's own.
        guard let components = SandboxFolder.components(ofSandboxPath: sandboxPath), components.count == 1,
              let name = components.last else { return nil }
        guard let bytes = try await Offload.run({ () -> [UInt8]? in
            try SandboxFolder(path: directory).readRegularFile(components, maxBytes: limit)
        }) else { return nil }
        let file = OpenAIFile(id: IDPrefix.file.makeID(), bytes: bytes.count, created_at: unixNow(), filename: name, purpose: "assistants_output")
        try await blobs.put(fileID: file.id, bytes: ByteBuffer(bytes: bytes))
        try await store.write(project: project) { try await $0.insert(file) }
        return (file, components.joined(separator: "/"))
    }

    /// What the model reads back: the logs, and the images made.
    static func toolOutput(_ call: JSONValue) -> String {
        let outputs = call["code_interpreter"]?["outputs"]?.arrayValue ?? []
        var text = outputs.compactMap { $0["type"]?.stringValue == "logs" ? $0["logs"]?.stringValue : nil }.joined(separator: "\n")
        let images = outputs.compactMap { $0["image"]?["file_id"]?.stringValue }
        if !images.isEmpty { text += "\n[\(images.count) image(s) shown to the user]" }
        if text.utf8.count > 16_000 { text = String(text.prefix(16_000)) + "\n[output truncated]" }
        return text.isEmpty ? "(no output)" : text
    }

    /// The files the run's code saved, by name, and its images, in order.
    static func outputs(of steps: [RunStep]) -> (files: [String: String], images: [String]) {
        var files: [String: String] = [:]
        var images: [String] = []
        for step in steps where step.type == "tool_calls" {
            for call in step.step_details["tool_calls"]?.arrayValue ?? [] where call["type"]?.stringValue == name {
                for output in call["code_interpreter"]?["outputs"]?.arrayValue ?? [] {
                    if let image = output["image"]?["file_id"]?.stringValue { images.append(image) }
                    for line in (output["logs"]?.stringValue ?? "").split(separator: "\n") where line.hasPrefix(savedPrefix) {
                        let rest = line.dropFirst(savedPrefix.count).dropLast()
                        if let range = rest.range(of: " as ", options: .backwards) {
                            files[String(rest[..<range.lowerBound])] = String(rest[range.upperBound...])
                        }
                    }
                }
            }
        }
        return (files, images)
    }

    /// `file_path` annotations for each `sandbox:/mnt/data/NAME` link to a saved file.
    static func annotations(in text: String, files: [String: String]) -> [JSONValue] {
        guard !files.isEmpty, text.contains("sandbox:/mnt/data/") else { return [] }
        let scalars = Array(text.unicodeScalars)
        let marker = Array("sandbox:/mnt/data/".unicodeScalars)
        var annotations: [JSONValue] = []
        var index = 0
        while index + marker.count <= scalars.count {
            guard Array(scalars[index..<(index + marker.count)]) == marker else {
                index += 1
                continue
            }
            var end = index + marker.count
            while end < scalars.count, !CharacterSet.whitespacesAndNewlines.contains(scalars[end]), !")]\"'`>,".unicodeScalars.contains(scalars[end]) {
                end += 1
            }
            var name = String(String.UnicodeScalarView(scalars[(index + marker.count)..<end]))
            while name.hasSuffix(".") && files[name] == nil {
                name.removeLast()
                end -= 1
            }
            if let fileID = files[name] {
                annotations.append([
                    "type": "file_path",
                    "text": .string(String(String.UnicodeScalarView(scalars[index..<end]))),
                    "start_index": .int(index),
                    "end_index": .int(end),
                    "file_path": ["file_id": .string(fileID)],
                ])
            }
            index = end
        }
        return annotations
    }
}
