import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A streaming `multipart/form-data` parser (RFC 7578 over RFC 2046) with bounded state: bytes go
/// in as they arrive, parts come out as headers and body slices, and every malformed input is a
/// thrown `MultipartFormParser.Failure`, never a trap. Part bodies are never held whole: at most
/// one boundary's length of a body waits for the next chunk.
struct MultipartFormParser {
    /// One thing the parser found.
    enum Event: Equatable {
        /// The headers of a new part, names lower-cased, in order.
        case part(headers: [(name: String, value: String)])
        /// Bytes of the current part's body.
        case body(ByteBuffer)
        /// The current part ended.
        case partEnd

        static func == (lhs: Event, rhs: Event) -> Bool {
            switch (lhs, rhs) {
            case let (.part(a), .part(b)): return a.map(\.name) == b.map(\.name) && a.map(\.value) == b.map(\.value)
            case let (.body(a), .body(b)): return a == b
            case (.partEnd, .partEnd): return true
            default: return false
            }
        }
    }

    /// Why a body is not valid multipart; `description` is said to the client.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let maxHeaderBytes = 16 * 1024
    static let maxPreambleBytes = 64 * 1024
    static let maxParts = 64

    private enum State {
        case preamble
        /// Just after a delimiter: `--` closes, CRLF opens a part.
        case afterDelimiter
        case headers
        case body
        case done
    }

    private let firstDelimiter: [UInt8]
    /// CRLF `--` boundary: what ends a body.
    private let delimiter: [UInt8]
    private var state = State.preamble
    private var buffer = ByteBuffer()
    private var parts = 0

    /// Whether the closing delimiter has been read.
    var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// A parser for `boundary`, which must be 1 to 70 characters (RFC 2046).
    init(boundary: String) throws {
        let bytes = Array(boundary.utf8)
        guard (1...70).contains(bytes.count), bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw Failure(description: "The multipart boundary must be 1 to 70 printable ASCII characters.")
        }
        firstDelimiter = Array("--".utf8) + bytes
        delimiter = Array("\r\n--".utf8) + bytes
    }

    /// Feeds the next bytes of the body; returns what they completed.
    mutating func feed(_ chunk: ByteBuffer) throws -> [Event] {
        if case .done = state { return [] }
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        var events: [Event] = []
        while try step(&events) {}
        if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
        return events
    }

    /// Says the body ended: throws unless the closing delimiter was read.
    func finish() throws {
        guard isComplete else {
            throw Failure(description: "The multipart body ended before its closing boundary.")
        }
    }

    /// One state transition; false when more bytes are needed.
    private mutating func step(_ events: inout [Event]) throws -> Bool {
        switch state {
        case .done:
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return false
        case .preamble:
            // The first delimiter starts the body or follows a CRLF of the preamble.
            if buffer.readableBytes >= firstDelimiter.count, starts(with: firstDelimiter, at: 0) {
                buffer.moveReaderIndex(forwardBy: firstDelimiter.count)
                state = .afterDelimiter
                return true
            }
            if buffer.readableBytes < firstDelimiter.count, isPrefix(of: firstDelimiter) { return false }
            if let index = find(delimiter) {
                buffer.moveReaderIndex(forwardBy: index + delimiter.count)
                state = .afterDelimiter
                return true
            }
            guard buffer.readableBytes <= Self.maxPreambleBytes else {
                throw Failure(description: "The multipart body has no boundary line '--\(String(decoding: firstDelimiter.dropFirst(2), as: UTF8.self))'.")
            }
            return false
        case .afterDelimiter:
            // Transport padding (spaces, tabs) may follow a delimiter; then `--` or CRLF.
            let view = buffer.readableBytesView
            var index = view.startIndex
            while index < view.endIndex, view[index] == 0x20 || view[index] == 0x09 { index += 1 }
            guard index - view.startIndex <= 256 else { throw Failure(description: "A multipart boundary line is malformed.") }
            guard view.endIndex - index >= 2 else { return false }
            let first = view[index], second = view[index + 1]
            if first == UInt8(ascii: "-"), second == UInt8(ascii: "-") {
                state = .done
                buffer.moveReaderIndex(to: buffer.writerIndex)
                return false
            }
            guard first == UInt8(ascii: "\r"), second == UInt8(ascii: "\n") else {
                throw Failure(description: "A multipart boundary line is malformed.")
            }
            buffer.moveReaderIndex(forwardBy: index + 2 - view.startIndex)
            parts += 1
            guard parts <= Self.maxParts else { throw Failure(description: "The multipart body has more than \(Self.maxParts) parts.") }
            state = .headers
            return true
        case .headers:
            let end: Int
            if starts(with: [0x0D, 0x0A], at: 0) {
                end = 0  // a part with no headers
            } else if let index = find([0x0D, 0x0A, 0x0D, 0x0A]) {
                end = index + 2
            } else {
                guard buffer.readableBytes <= Self.maxHeaderBytes else {
                    throw Failure(description: "A multipart part's headers are larger than \(Self.maxHeaderBytes / 1024) KB.")
                }
                return false
            }
            guard end <= Self.maxHeaderBytes else {
                throw Failure(description: "A multipart part's headers are larger than \(Self.maxHeaderBytes / 1024) KB.")
            }
            let block = buffer.readBytes(length: end) ?? []
            buffer.moveReaderIndex(forwardBy: 2)
            events.append(.part(headers: try Self.headers(block)))
            state = .body
            return true
        case .body:
            if let index = find(delimiter) {
                if index > 0, let slice = buffer.readSlice(length: index) { events.append(.body(slice)) }
                buffer.moveReaderIndex(forwardBy: delimiter.count)
                events.append(.partEnd)
                state = .afterDelimiter
                return true
            }
            // Keep back what could be the start of a delimiter split across chunks.
            let keep = partialSuffixLength()
            let ready = buffer.readableBytes - keep
            if ready > 0, let slice = buffer.readSlice(length: ready) { events.append(.body(slice)) }
            return false
        }
    }

    /// Parses a header block (lines ending in CRLF): names must be RFC 9110 tokens, values
    /// printable (UTF-8 allowed, no control characters but tab), no obsolete line folding.
    static func headers(_ block: [UInt8]) throws -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        var start = 0
        while start < block.count {
            var end = start
            while end + 1 < block.count, !(block[end] == 0x0D && block[end + 1] == 0x0A) { end += 1 }
            guard end + 1 < block.count else { throw Failure(description: "A multipart header line is not terminated.") }
            let line = block[start..<end]
            start = end + 2
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw Failure(description: "A multipart header line has no name.")
            }
            let name = line[line.startIndex..<colon]
            guard name.allSatisfy(isTokenByte) else {
                throw Failure(description: "A multipart header name holds a character that is not allowed.")
            }
            let rawValue = line[(colon + 1)...]
            guard rawValue.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw Failure(description: "A multipart header value holds a control character.")
            }
            guard let value = String(validating: rawValue, as: UTF8.self) else {
                throw Failure(description: "A multipart header value is not valid UTF-8.")
            }
            headers.append((String(decoding: name, as: UTF8.self).lowercased(),
                            value.trimmingCharacters(in: .whitespaces)))
        }
        return headers
    }

    /// `tchar` of RFC 9110: the bytes a header name may hold.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    // MARK: byte search over the readable bytes

    private func starts(with pattern: [UInt8], at offset: Int) -> Bool {
        guard buffer.readableBytes >= offset + pattern.count else { return false }
        return buffer.withUnsafeReadableBytes { Self.equal($0, at: offset, pattern, count: pattern.count) }
    }

    private func isPrefix(of pattern: [UInt8]) -> Bool {
        let count = min(buffer.readableBytes, pattern.count)
        return buffer.withUnsafeReadableBytes { Self.equal($0, at: 0, pattern, count: count) }
    }

    /// Whether `count` bytes of `raw` from `offset` equal the first `count` bytes of `pattern`.
    private static func equal(_ raw: UnsafeRawBufferPointer, at offset: Int, _ pattern: [UInt8], count: Int) -> Bool {
        guard count > 0 else { return true }
        guard let base = raw.baseAddress, offset + count <= raw.count, count <= pattern.count else { return false }
        return pattern.withUnsafeBytes { bytes in
            guard let other = bytes.baseAddress else { return false }
            return memcmp(base + offset, other, count) == 0
        }
    }

    /// The offset of `pattern` in the readable bytes.
    private func find(_ pattern: [UInt8]) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            guard raw.count >= pattern.count, let base = raw.baseAddress else { return nil }
            let first = Int32(pattern[0])
            var offset = 0
            while offset + pattern.count <= raw.count {
                guard let hit = memchr(base + offset, first, raw.count - pattern.count + 1 - offset) else { return nil }
                let index = base.distance(to: UnsafeRawPointer(hit))
                if Self.equal(raw, at: index, pattern, count: pattern.count) { return index }
                offset = index + 1
            }
            return nil
        }
    }

    /// How many trailing bytes could begin the body delimiter.
    private func partialSuffixLength() -> Int {
        buffer.withUnsafeReadableBytes { raw -> Int in
            let limit = min(raw.count, delimiter.count - 1)
            var length = limit
            while length > 0 {
                let start = raw.count - length
                if zip(raw[start...], delimiter).allSatisfy({ $0 == $1 }) { return length }
                length -= 1
            }
            return 0
        }
    }
}
