import Foundation
import NIOPosix
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
        guard let handle = FileHandle(forReadingAtPath: path) else {
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
        if let missing = RuntimeDependencies.pdftotext.missingReason {
            throw ExtractionError.unsupported(missing)
        }
        let result = try await ProcessRunner.run(
            "pdftotext", arguments: ["-q", "-enc", "UTF-8", path, "-"], timeout: .seconds(120))
        guard result.status == 0 else {
            if result.status == 126 || result.status == 127, let missing = RuntimeDependencies.pdftotext.missingReason {
                throw ExtractionError.unsupported(missing)
            }
            throw ExtractionError.invalid("The PDF could not be read (pdftotext exit status \(result.status)): the file may be damaged.")
        }
        return String(decoding: result.output, as: UTF8.self)
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

/// Runs a system tool and collects its standard output.
enum ProcessRunner {
    struct Result: Sendable {
        var status: Int32
        var output: Data
    }

    static func run(_ tool: String, arguments: [String], timeout: Duration) async throws -> Result {
        try await Offload.process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [tool] + arguments
            process.environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            do {
                try process.run()
            } catch {
                throw ExtractionError.invalid("\(tool) could not be started: \(error). Is it installed (scripts/setup-system.sh)?")
            }
            let seconds = Double(timeout.components.seconds)
            let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: killer)
            let output = pipe.fileHandleForReading.readDataToEndOfFile()  // blocking-ok: in Offload.process
            process.waitUntilExit()  // blocking-ok: in Offload.process
            killer.cancel()
            return Result(status: process.terminationStatus, output: output)
        }
    }
}
