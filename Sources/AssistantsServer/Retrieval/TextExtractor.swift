import Foundation
import NIOPosix
import Subprocess
import ZIPFoundation

/// Why a file yields no text: `unsupported_file` (a kind we do not read) or `invalid_file` (broken).
struct ExtractionError: Error {
    var code: String
    var message: String

    static func unsupported(_ message: String) -> ExtractionError { .init(code: "unsupported_file", message: message) }
    static func invalid(_ message: String) -> ExtractionError { .init(code: "invalid_file", message: message) }
}

/// Extracts the text of an uploaded file, recognized by its content rather than its name:
/// PDF (through poppler's `pdftotext`), Word .docx (ZIP + XML), HTML (text without markup),
/// and any UTF-8 text (Markdown, plain text, JSON, CSV, source code).
enum TextExtractor {
    static func extract(path: String) async throws -> String {
        let head = try await Offload.run { try readHead(path: path, count: 1024) }
        if head.starts(with: Array("%PDF-".utf8)) {
            return try await pdfText(path: path)
        }
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            return try await Offload.run { try docxText(path: path) }
        }
        // Reading and parsing a large file is kept off the event loops.
        return try await Offload.run { try plainText(path: path) }
    }

    /// Text, Markdown, JSON, CSV, code, or HTML without its markup.
    static func plainText(path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))  // blocking-ok: in Offload
        if data.contains(0) {
            throw ExtractionError.unsupported("The file is binary data of a kind that cannot be searched (supported: PDF, .docx, HTML, Markdown, text, JSON, CSV, source code).")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw ExtractionError.unsupported("The file is neither UTF-8 text nor a supported document format (PDF, .docx).")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        if looksLikeHTML(text) {
            return HTMLText.extract(text)
        }
        return text
    }

    static func readHead(path: String, count: Int) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {  // blocking-ok: in Offload
            throw ExtractionError.invalid("The file's bytes are missing from storage.")
        }
        defer { try? handle.close() }
        return [UInt8](handle.readData(ofLength: count))  // blocking-ok: in Offload
    }

    static func looksLikeHTML(_ text: String) -> Bool {
        let start = text.prefix(2048).lowercased().drop(while: { $0.isWhitespace })
        return start.hasPrefix("<!doctype html") || start.hasPrefix("<html") || (start.hasPrefix("<") && start.contains("<body"))
    }

    /// `pdftotext -enc UTF-8 FILE -`: exact UTF-8 text, pages separated by form feeds.
    static func pdfText(path: String) async throws -> String {
        // Looking for the program is a stat: off the event loops too.
        if let missing = try await Offload.run({ RuntimeDependencies.pdftotext.missingReason }) {
            throw ExtractionError.unsupported(missing)
        }
        let result = try await ProcessRunner.run(
            "pdftotext", arguments: ["-q", "-enc", "UTF-8", path, "-"], timeout: .seconds(120))
        guard result.status == 0 else {
            if result.status == 126 || result.status == 127,
               let missing = try await Offload.run({ RuntimeDependencies.pdftotext.missingReason }) {
                throw ExtractionError.unsupported(missing)
            }
            throw ExtractionError.invalid("The PDF could not be read (pdftotext exit status \(result.status)): the file may be damaged.")
        }
        return result.text
    }

    /// The paragraphs of a Word document's `word/document.xml`.
    static func docxText(path: String) throws -> String {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw ExtractionError.invalid("The ZIP archive could not be opened: the file may be damaged.")
        }
        guard let entry = archive["word/document.xml"] else {
            throw ExtractionError.unsupported("The file is a ZIP archive but not a Word (.docx) document.")
        }
        var xml = Data()
        do {
            _ = try archive.extract(entry, skipCRC32: false) { xml.append($0) }
        } catch {
            throw ExtractionError.invalid("The Word document could not be decompressed: the file may be damaged.")
        }
        return HTMLText.extractWordXML(String(decoding: xml, as: UTF8.self))
    }
}

/// Runs a system tool at low priority and collects its standard output, without holding a thread
/// while it runs (swift-subprocess), at most `Offload.children` at once, killed at `timeout`.
enum ProcessRunner {
    struct Result: Sendable {
        var status: Int32
        /// Standard output, as UTF-8.
        var text: String
    }

    /// Standard output past this is an error (the tool is killed).
    static let outputLimit = 512 * 1024 * 1024

    static func run(_ tool: String, arguments: [String], timeout: Duration) async throws -> Result {
        try await Offload.process {
            do {
                return try await withThrowingTaskGroup(of: Result?.self) { group in
                    group.addTask { try await collect(tool, arguments: arguments) }
                    group.addTask {
                        try await Task.sleep(for: timeout)
                        return nil
                    }
                    // The first to finish wins: the output, or the timer (which cancels the tool: SIGKILL).
                    let first = try await group.next() ?? nil
                    group.cancelAll()
                    guard let first else { return Result(status: 128 + SIGKILL, text: "") }
                    return first
                }
            } catch let error as SubprocessError {
                throw ExtractionError.invalid("\(tool) could not be started: \(error). Is it installed (scripts/setup-system.sh)?")
            }
        }
    }

    /// `nice -n 10 TOOL ARGUMENTS...`: its output and exit status.
    private static func collect(_ tool: String, arguments: [String]) async throws -> Result {
        let result = try await Subprocess.run(
            .path("/usr/bin/env"), arguments: Arguments(["nice", "-n", "10", tool] + arguments),
            environment: .custom(["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"]),
            input: .none, output: .sequence, error: .discarded
        ) { execution in
            // Kept as the pieces that arrive, then joined and decoded off the event loop in one go:
            // one buffer grown to tens of MiB here would copy and fault in its pages on the loop at
            // every doubling, and validating megabytes of UTF-8 is CPU work.
            var pieces: [[UInt8]] = []
            var count = 0
            for try await buffer in execution.standardOutput {
                pieces.append(buffer.withUnsafeBytes { [UInt8]($0) })
                count += pieces[pieces.count - 1].count
                if count > outputLimit {
                    throw ExtractionError.invalid("\(tool) wrote more than \(outputLimit / (1024 * 1024)) MiB of text.")
                }
            }
            let (collected, total) = (pieces, count)
            return try await Offload.run {
                var output: [UInt8] = []
                output.reserveCapacity(total)
                for piece in collected { output += piece }
                return String(decoding: output, as: UTF8.self)
            }
        }
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = code
        case .signaled(let signal): status = 128 + signal
        }
        return Result(status: status, text: result.closureResult)
    }
}
