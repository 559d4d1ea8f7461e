import Foundation
import Testing

/// NIO's event loops run every task here, so a blocking call in async code stalls every connection
/// on its loop. This check fails on any blocking API in the server's sources unless its line says
/// why it is safe (`// blocking-ok: start-up` or `// blocking-ok: in Offload`): work that blocks
/// goes through `Offload`, child processes through swift-subprocess, files through NIOFileSystem.
@Suite struct BlockingCallsTests {
    /// The blocking APIs, one pattern per family.
    static let patterns = [
        // FileManager: copy, move, remove, read, create, list.
        #"FileManager\.default\.(copyItem|moveItem|contents\(|contentsOfDirectory|removeItem|createFile|subpathsOfDirectory|attributesOfItem|replaceItem)"#,
        // Foundation's FileHandle: opening one (NIOFileSystem's `withFileHandle` is not it), reading, writing.
        #"(?<!\w)FileHandle\(for(Reading|Writing|Updating)|readDataToEndOfFile|\.availableData|\.readData\(|\.seekToEnd\("#,
        #"FileHandle\([^)]*\)\.write|\binput\?\.write\(|fileHandleForWriting\.write"#,
        // Foundation's Process and waiting for it; sleeping a thread; semaphores and groups.
        #"\bProcess\(\)|waitUntilExit\(|Thread\.sleep|(?<![.\w])usleep\(|(?<![.\w])sleep\(|(?<![.\w])nanosleep\("#,
        #"DispatchSemaphore|DispatchGroup\(\)"#,
        // Whole-file reads and writes.
        #"Data\(contentsOf:|NSData\(contentsOf|String\(contentsOf(File)?:|\.write\(toFile:|\.write\(to:(?!\s*&)"#,
    ]

    /// Calls that exist both as blocking methods (FileHandle, DispatchGroup) and as async ones
    /// (NIOFileSystem, an actor's): caught on a line that does not `await`.
    static let synchronousPatterns = [
        #"\.readToEnd\(\)|\.read\(upToCount:|\.write\(contentsOf:|\.synchronize\(\)|\.wait\(\)|\.wait\((timeout|wallTimeout):"#,
    ]

    static var sourcesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/AssistantsServer")
    }

    /// The numbers (from 1) of the lines of `text` that use a blocking API without saying why it is safe.
    static func offendingLines(in text: String) throws -> [Int] {
        let regexes = try patterns.map { try NSRegularExpression(pattern: $0) }
        let synchronous = try synchronousPatterns.map { try NSRegularExpression(pattern: $0) }
        let awaits = try NSRegularExpression(pattern: #"\bawait\b"#)
        var lines: [Int] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = String(line)
            if content.trimmingCharacters(in: .whitespaces).hasPrefix("//") || content.contains("// blocking-ok:") { continue }
            let range = NSRange(content.startIndex..., in: content)
            let matches = { (regex: NSRegularExpression) in regex.firstMatch(in: content, range: range) != nil }
            if regexes.contains(where: matches) || (!matches(awaits) && synchronous.contains(where: matches)) {
                lines.append(number + 1)
            }
        }
        return lines
    }

    @Test func everyBlockingCallIsOffloadedOrAtStartUp() throws {
        var offenders: [String] = []
        var scanned = 0
        let files = FileManager.default.enumerator(atPath: Self.sourcesDirectory.path)?.compactMap { $0 as? String } ?? []
        for file in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: Self.sourcesDirectory.appendingPathComponent(file), encoding: .utf8)
            scanned += 1
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for number in try Self.offendingLines(in: text) {
                offenders.append("\(file):\(number): \(lines[number - 1].trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(scanned > 50, "the sources were not found at \(Self.sourcesDirectory.path)")
        #expect(offenders.isEmpty, "blocking calls outside Offload and start-up:\n\(offenders.joined(separator: "\n"))")
    }

    /// Each blocking API of the issue's list is caught; the async and offloaded forms are not.
    @Test func theCheckCatchesEachBlockingAPI() throws {
        let blocking = [
            #"try FileManager.default.copyItem(atPath: a, toPath: b)"#,
            #"try FileManager.default.moveItem(atPath: a, toPath: b)"#,
            #"let data = FileManager.default.contents(atPath: path)"#,
            #"FileManager.default.createFile(atPath: log, contents: nil)"#,
            #"try FileManager.default.removeItem(atPath: path)"#,
            #"let names = try FileManager.default.contentsOfDirectory(atPath: path)"#,
            #"let handle = FileHandle(forReadingAtPath: path)"#,
            #"let bytes = try handle.readToEnd()"#,
            #"let bytes = try handle.read(upToCount: 4096)"#,
            #"let data = pipe.fileHandleForReading.readDataToEndOfFile()"#,
            #"try handle.write(contentsOf: data)"#,
            #"let process = Process()"#,
            #"process.waitUntilExit()"#,
            #"Thread.sleep(forTimeInterval: 1)"#,
            #"usleep(1000)"#,
            #"sleep(1)"#,
            #"semaphore.wait()"#,
            #"try handle.synchronize()"#,
            #"let semaphore = DispatchSemaphore(value: 0)"#,
            #"_ = group.wait(timeout: .now() + 5)"#,
            #"let data = try Data(contentsOf: url)"#,
            #"let text = try String(contentsOfFile: path, encoding: .utf8)"#,
            #"let text = try String(contentsOf: url, encoding: .utf8)"#,
            #"try text.write(toFile: path, atomically: true, encoding: .utf8)"#,
            #"try data.write(to: url)"#,
        ]
        for line in blocking {
            #expect(try Self.offendingLines(in: line) == [1], "not caught: \(line)")
        }
        let fine = [
            #"try await Task.sleep(for: .seconds(1))"#,
            #"let data = try Data(contentsOf: url)  // blocking-ok: start-up"#,
            #"// process.waitUntilExit() in a comment"#,
            #"try node.write(to: &output)"#,
            #"try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { _ in }"#,
            #"_ = try await execution.standardInputWriter.write(bytes)"#,
            #"try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(path)) { handle in"#,
            #"try await handle.write(contentsOf: chunk, toAbsoluteOffset: offset)"#,
            #"try await handle.synchronize()"#,
            #"await wakeup.wait(timeout: pollInterval)"#,
        ]
        for line in fine {
            #expect(try Self.offendingLines(in: line).isEmpty, "wrongly caught: \(line)")
        }
    }
}
