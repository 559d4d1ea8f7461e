import Foundation
import Testing
@testable import AssistantsServer

/// Text extraction, chunking, ranking helpers, filters and citations.
@Suite struct RetrievalTests {
    @Test func chunksRespectSizeAndOverlap() {
        let text = (0..<1000).map { "word\($0)" }.joined(separator: " ")
        let chunks = Chunker(strategy: ChunkingStrategy(static: .init(max_chunk_size_tokens: 100, chunk_overlap_tokens: 50))).chunks(of: text)
        #expect(chunks.count > 10)
        for chunk in chunks {
            #expect(Chunker.tokens(Array(chunk.text.utf8)).reduce(0) { $0 + $1.weight } <= 100)
            #expect(String(decoding: Array(text.utf8)[chunk.startOffset..<chunk.endOffset], as: UTF8.self) == chunk.text)
        }
        // Consecutive chunks overlap, and the last one reaches the end.
        #expect(chunks[1].startOffset < chunks[0].endOffset)
        #expect(chunks.last?.endOffset == text.utf8.count)
        let noOverlap = Chunker(strategy: ChunkingStrategy(static: .init(max_chunk_size_tokens: 100, chunk_overlap_tokens: 0))).chunks(of: text)
        #expect(noOverlap[1].startOffset >= noOverlap[0].endOffset)
    }

    @Test func chunkOffsetsAreUTF8Safe() {
        let text = String(repeating: "héllo wörld 日本語 ", count: 300)
        for chunk in Chunker(strategy: .auto).chunks(of: text) {
            #expect(String(validating: Array(chunk.text.utf8), as: UTF8.self) != nil)
        }
    }

    @Test func htmlLosesMarkupScriptsAndStyles() {
        let html = "<html><head><title>T</title><style>p{}</style><script>var x=1;</script></head><body><p>Fish &amp; chips</p><div>a&#39;b</div></body></html>"
        let text = HTMLText.extract(html)
        #expect(text.contains("Fish & chips"))
        #expect(text.contains("a'b"))
        #expect(!text.contains("var x"))
        #expect(!text.contains("p{}"))
        #expect(!text.contains("<"))
    }

    @Test func wordXMLKeepsParagraphs() {
        let xml = "<w:document><w:body><w:p><w:r><w:t>First</w:t></w:r></w:p><w:p><w:r><w:t>Second</w:t></w:r></w:p></w:body></w:document>"
        #expect(HTMLText.extractWordXML(xml) == "First\nSecond")
    }

    @Test func extractorRecognizesContentNotNames() async throws {
        let directory = TestSupport.temporaryDirectory()
        let html = directory + "/page.txt"
        try "<!DOCTYPE html><html><body><p>Hello</p></body></html>".write(toFile: html, atomically: true, encoding: .utf8)
        #expect(try await TextExtractor.extract(path: html) == "Hello")
        let binary = directory + "/data.pdf.txt"
        try Data([0, 1, 2, 3, 255]).write(to: URL(fileURLWithPath: binary))
        await #expect(throws: ExtractionError.self) { _ = try await TextExtractor.extract(path: binary) }
        let brokenPDF = directory + "/broken"
        try Data("%PDF-1.4 not really".utf8).write(to: URL(fileURLWithPath: brokenPDF))
        do {
            _ = try await TextExtractor.extract(path: brokenPDF)
            Issue.record("a broken PDF was read")
        } catch let error as ExtractionError {
            #expect(error.code == "invalid_file")
        }
    }

    @Test func searchTermsDropStopwords() {
        #expect(FileSearch.terms("What is the capital of Zorblatt?") == ["capital", "zorblatt"])
        #expect(FileSearch.terms("the") == ["the"])
        #expect(FileSearch.terms("\"quotes\" OR drop; table") == ["quotes", "drop", "table"])
    }

    @Test func attributeFilters() {
        let attributes: [String: JSONValue] = ["kind": "report", "year": 2024, "draft": false]
        #expect(AttributeFilter.matches(["type": "eq", "key": "kind", "value": "report"], attributes: attributes))
        #expect(!AttributeFilter.matches(["type": "ne", "key": "kind", "value": "report"], attributes: attributes))
        #expect(AttributeFilter.matches(["type": "gte", "key": "year", "value": 2024], attributes: attributes))
        #expect(!AttributeFilter.matches(["type": "lt", "key": "year", "value": 2000], attributes: attributes))
        #expect(AttributeFilter.matches(["type": "in", "key": "kind", "value": ["memo", "report"]], attributes: attributes))
        #expect(AttributeFilter.matches(["type": "and", "filters": [
            ["type": "eq", "key": "draft", "value": false], ["type": "or", "filters": [["type": "eq", "key": "year", "value": 1], ["type": "gt", "key": "year", "value": 2000]]],
        ]], attributes: attributes))
        #expect(!AttributeFilter.matches(["type": "eq", "key": "missing", "value": 1], attributes: attributes))
    }

    @Test func citationsBecomeAnnotationsAtScalarOffsets() {
        let text = "Café 🚀 says 【1†b.pdf】 and 【0:3†a.txt】, not 【7†x】."
        let annotations = FileSearchTool.annotations(in: text, sources: ["file-a", "file-b"])
        #expect(annotations.count == 2)
        let scalars = Array(text.unicodeScalars)
        for annotation in annotations {
            let start = annotation["start_index"]?.intValue ?? -1
            let end = annotation["end_index"]?.intValue ?? -1
            #expect(String(String.UnicodeScalarView(scalars[start..<end])) == annotation["text"]?.stringValue)
        }
        #expect(annotations[0]["file_citation"]?["file_id"]?.stringValue == "file-b")
        #expect(annotations[1]["file_citation"]?["file_id"]?.stringValue == "file-a")
    }

    @Test func fileSearchQueriesFromArguments() {
        #expect(FileSearchTool.queries(fromArguments: #"{"queries":["a","b"]}"#) == ["a", "b"])
        #expect(FileSearchTool.queries(fromArguments: #"{"query":"x"}"#) == ["x"])
        #expect(FileSearchTool.queries(fromArguments: "plain words") == ["plain words"])
    }
}
