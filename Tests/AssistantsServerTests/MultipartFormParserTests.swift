import NIOCore
import Testing

@testable import AssistantsServer

/// The multipart parser: well-formed bodies in any chunking, and hostile bytes anywhere never trap.
@Suite struct MultipartFormParserTests {
    static let body = Array((
        "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
        + "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b.txt\"\r\nContent-Type: text/plain\r\n\r\n"
        + "line one\r\n--Xy not a boundary\r\n-XyZ neither\r\n\r\n--XyZ--\r\nepilogue").utf8)

    /// Parses `bytes` fed in chunks of `size`; returns fields and the file's bytes.
    static func parse(_ bytes: [UInt8], chunk size: Int, boundary: String = "XyZ") throws -> (fields: [String: String], file: [UInt8]) {
        var parser = try MultipartFormParser(boundary: boundary)
        var fields: [String: String] = [:]
        var file: [UInt8] = []
        var name: String?
        var value: [UInt8] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + size)
            for event in try parser.feed(ByteBuffer(bytes: bytes[start..<end])) {
                switch event {
                case .part(let headers):
                    let disposition = try HeaderParameters(parsing: headers.first { $0.name == "content-disposition" }?.value ?? "")
                    name = disposition["name"]
                    value = []
                case .body(let buffer):
                    if name == "file" { file += Array(buffer.readableBytesView) } else { value += Array(buffer.readableBytesView) }
                case .partEnd:
                    if let name, name != "file" { fields[name] = String(decoding: value, as: UTF8.self) }
                    name = nil
                }
            }
            start = end
        }
        try parser.finish()
        return (fields, file)
    }

    @Test func parsesInAnyChunking() throws {
        for size in [1, 2, 3, 5, 7, 16, 64, Self.body.count] {
            let (fields, file) = try Self.parse(Self.body, chunk: size)
            #expect(fields == ["purpose": "assistants"], "chunk \(size)")
            #expect(String(decoding: file, as: UTF8.self) == "line one\r\n--Xy not a boundary\r\n-XyZ neither\r\n", "chunk \(size)")
        }
    }

    @Test func aMissingClosingBoundaryIsAnError() throws {
        let cut = Array(Self.body.prefix(while: { _ in true }).dropLast("--XyZ--\r\nepilogue".utf8.count))
        #expect(throws: MultipartFormParser.Failure.self) { try Self.parse(cut, chunk: 7) }
        #expect(throws: MultipartFormParser.Failure.self) { try Self.parse(Array("--XyZ\r\n".utf8), chunk: 3) }
        #expect(throws: MultipartFormParser.Failure.self) { try Self.parse([], chunk: 1) }
    }

    /// Every byte value in every position of a part header either parses or throws: never a trap.
    @Test func everyByteInEveryHeaderPositionIsHandled() throws {
        let prefix = Array("--B\r\n".utf8)
        let header = Array("Content-Disposition: form-data; name=\"file\"; filename=\"x.txt\"".utf8)
        let suffix = Array("\r\n\r\nabc\r\n--B--\r\n".utf8)
        var parsed = 0, refused = 0
        for position in 0..<header.count {
            for byte in UInt8.min...UInt8.max {
                var bytes = header
                bytes[position] = byte
                do {
                    _ = try Self.parse(prefix + bytes + suffix, chunk: 4096, boundary: "B")
                    parsed += 1
                } catch is MultipartFormParser.Failure {
                    refused += 1
                } catch is HeaderParameters.Failure {
                    refused += 1
                }
            }
        }
        #expect(parsed + refused == header.count * 256)
        #expect(parsed > 0 && refused > 0)
    }

    @Test func headerNamesMustBeTokens() {
        for name in ["\u{FF}", "été", "a b", "a\u{0}"] {
            let bytes = Array("--B\r\n\(name): x\r\n\r\nabc\r\n--B--\r\n".utf8)
            #expect(throws: MultipartFormParser.Failure.self, "\(name)") { try Self.parse(bytes, chunk: 5, boundary: "B") }
        }
        let raw: [UInt8] = Array("--B\r\n".utf8) + [0xFF] + Array(": x\r\n\r\nabc\r\n--B--\r\n".utf8)
        #expect(throws: MultipartFormParser.Failure.self) { try Self.parse(raw, chunk: 40, boundary: "B") }
    }

    /// Random bodies (fixed seed): the parser answers or throws, whatever the bytes.
    @Test func randomBodiesNeverTrap() {
        var generator = SeededGenerator(seed: 0x5EED)
        let alphabet = Array("--B\r\n:;=\"abcContent-Disposition form-data name file".utf8) + [0x00, 0x7F, 0x80, 0xFF, 0xC3, 0xA9]
        for _ in 0..<2_000 {
            let length = Int.random(in: 0..<200, using: &generator)
            var bytes = (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
            if Bool.random(using: &generator) { bytes = Array("--B\r\n".utf8) + bytes }
            if Bool.random(using: &generator) { bytes += Array("\r\n--B--".utf8) }
            _ = try? Self.parse(bytes, chunk: Int.random(in: 1...32, using: &generator), boundary: "B")
        }
    }

    @Test func dispositionParameters() throws {
        let quoted = try HeaderParameters(parsing: #"form-data; name="file"; filename="report;v2.pdf""#)
        #expect(quoted.type == "form-data")
        #expect(quoted["filename"] == "report;v2.pdf")
        let escaped = try HeaderParameters(parsing: #"form-data; name="file"; filename="a \"quoted\" name.txt""#)
        #expect(escaped["filename"] == #"a "quoted" name.txt"#)
        let extended = try HeaderParameters(parsing: #"form-data; name="file"; filename="resume.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"#)
        #expect(extended["filename"] == "résumé.txt")
        let boundary = try HeaderParameters(parsing: "multipart/form-data; boundary=----=_Part_0_1")
        #expect(boundary["boundary"] == "----=_Part_0_1")
        #expect(throws: HeaderParameters.Failure.self) { try HeaderParameters(parsing: #"form-data; name="unterminated"#) }
        #expect(throws: HeaderParameters.Failure.self) { try HeaderParameters(parsing: "form-data; filename*=UTF-8''%ZZ") }
    }

    @Test func filenamesWithControlCharactersAreRefused() {
        #expect(throws: APIError.self) { try MultipartUpload.checkedFilename("a\u{1}b.txt") }
        #expect((try? MultipartUpload.checkedFilename("été.pdf")) == "été.pdf")
    }
}

/// A small deterministic generator (SplitMix64) for repeatable random inputs.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
