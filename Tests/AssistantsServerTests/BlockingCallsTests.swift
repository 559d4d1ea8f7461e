import Foundation
import Testing

/// NIO's event loops run every task here, so a blocking call in async code stalls every connection
/// on its loop. This check fails on any blocking API in the server's sources unless its line says
/// why it is safe (`// blocking-ok: start-up` or `// blocking-ok: in Offload`): work that blocks
/// goes through `Offload`.
@Suite struct BlockingCallsTests {
    static let patterns = [
        #"FileManager\.default\.(copyItem|moveItem|contents\(|contentsOfDirectory|removeItem)"#,
        #"\.readToEnd\(\)|readDataToEndOfFile|\.availableData|\.readData\("#,
        #"FileHandle\([^)]*\)\.write|\binput\?\.write\(|fileHandleForWriting\.write"#,
        #"waitUntilExit\(|Thread\.sleep|usleep\(|DispatchSemaphore|\.wait\(\)"#,
        #"Data\(contentsOf:|String\(contentsOfFile:|\.write\(toFile:"#,
    ]

    static var sourcesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/AssistantsServer")
    }

    @Test func everyBlockingCallIsOffloadedOrAtStartUp() throws {
        let regexes = try Self.patterns.map { try NSRegularExpression(pattern: $0) }
        var offenders: [String] = []
        var scanned = 0
        let files = FileManager.default.enumerator(atPath: Self.sourcesDirectory.path)?.compactMap { $0 as? String } ?? []
        for file in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: Self.sourcesDirectory.appendingPathComponent(file), encoding: .utf8)
            scanned += 1
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let content = String(line)
                if content.trimmingCharacters(in: .whitespaces).hasPrefix("//") || content.contains("// blocking-ok:") { continue }
                let range = NSRange(content.startIndex..., in: content)
                if regexes.contains(where: { $0.firstMatch(in: content, range: range) != nil }) {
                    offenders.append("\(file):\(number + 1): \(content.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(scanned > 50, "the sources were not found at \(Self.sourcesDirectory.path)")
        #expect(offenders.isEmpty, "blocking calls outside Offload and start-up:\n\(offenders.joined(separator: "\n"))")
    }
}
