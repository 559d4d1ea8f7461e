import Foundation

/// The parameters of a header value such as `Content-Disposition: form-data; name="file";
/// filename="a;b.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf` or `Content-Type: multipart/form-data;
/// boundary=X`, parsed per RFC 9110 (tokens and quoted strings with backslash escapes), RFC 8187
/// (`name*` extended values) and RFC 6266 / 7578 (an extended value wins over the plain one).
struct HeaderParameters {
    /// Why a header value could not be read; said to the client.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The value before the first `;` (`form-data`, `multipart/form-data`), lower-cased.
    let type: String
    /// Parameter names lower-cased, values decoded; `name*` values are stored under `name`.
    private(set) var values: [String: String] = [:]

    subscript(_ name: String) -> String? { values[name.lowercased()] }

    init(parsing header: String) throws {
        let scalars = Array(header.unicodeScalars)
        var index = 0
        func skipSpace() { while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 } }
        /// Up to `;`, white space or (for a name) `=`; unquoted values may hold `=` (RFC 2046 boundaries do).
        func token(stoppingAtEquals: Bool = true) -> String {
            var text = String.UnicodeScalarView()
            while index < scalars.count, scalars[index] != ";", !(stoppingAtEquals && scalars[index] == "="),
                  scalars[index] != " ", scalars[index] != "\t" {
                text.append(scalars[index])
                index += 1
            }
            return String(text)
        }
        skipSpace()
        var typeText = String.UnicodeScalarView()
        while index < scalars.count, scalars[index] != ";" {
            typeText.append(scalars[index])
            index += 1
        }
        type = String(typeText).trimmingCharacters(in: .whitespaces).lowercased()
        var extended: [String: String] = [:]
        while index < scalars.count {
            guard scalars[index] == ";" else { throw Failure(description: "expected ';' between header parameters") }
            index += 1
            skipSpace()
            if index == scalars.count { break }  // a trailing ';'
            let name = token().lowercased()
            guard !name.isEmpty else { throw Failure(description: "a header parameter has no name") }
            skipSpace()
            guard index < scalars.count, scalars[index] == "=" else { throw Failure(description: "header parameter '\(name)' has no value") }
            index += 1
            skipSpace()
            var value = String.UnicodeScalarView()
            if index < scalars.count, scalars[index] == "\"" {
                index += 1
                var closed = false
                while index < scalars.count {
                    let scalar = scalars[index]
                    index += 1
                    if scalar == "\"" {
                        closed = true
                        break
                    }
                    if scalar == "\\", index < scalars.count {
                        value.append(scalars[index])
                        index += 1
                    } else {
                        value.append(scalar)
                    }
                }
                guard closed else { throw Failure(description: "header parameter '\(name)' has an unterminated quoted string") }
            } else {
                value = token(stoppingAtEquals: false).unicodeScalars
            }
            skipSpace()
            if name.hasSuffix("*") {
                extended[String(name.dropLast())] = try Self.decodeExtended(String(value), name: name)
            } else if values[name] == nil {
                values[name] = String(value)
            }
        }
        for (name, value) in extended { values[name] = value }
    }

    /// An RFC 8187 `ext-value`: `charset'language'percent-encoded`, UTF-8 or ISO-8859-1.
    static func decodeExtended(_ text: String, name: String) throws -> String {
        let pieces = text.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard pieces.count == 3 else { throw Failure(description: "header parameter '\(name)' is not charset'language'value") }
        var bytes: [UInt8] = []
        var iterator = Array(pieces[2].utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw Failure(description: "header parameter '\(name)' has a bad percent escape")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        switch pieces[0].lowercased() {
        case "utf-8":
            guard let value = String(validating: bytes, as: UTF8.self) else {
                throw Failure(description: "header parameter '\(name)' is not valid UTF-8")
            }
            return value
        case "iso-8859-1":
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        default:
            throw Failure(description: "header parameter '\(name)' has an unsupported charset '\(pieces[0])'")
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
