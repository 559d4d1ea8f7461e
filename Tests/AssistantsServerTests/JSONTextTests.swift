import Foundation
import Testing
@testable import AssistantsServer

/// The hand-written JSON reader and writer behind request bodies and model-call bodies: it must
/// agree with Foundation's coders on valid JSON and reject what they reject.
@Suite struct JSONTextTests {
    /// Foundation's reading of the same text, for comparison.
    private func foundation(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test(arguments: [
        #"{"a":1,"b":-2.5,"c":"x","d":[true,false,null],"e":{"f":[]},"g":{}}"#,
        #"  [1, 2e3, -0, 0.5, 1E-2, 9223372036854775807, 92233720368547758070, -9223372036854775808]  "#,
        #""esc: \" \\ \/ \b \f \n \r \t \u00e9 \u20AC \ud83d\ude00 end""#,
        #"{"unicode":"ünïcødé ✓ 😀","empty":"","nested":[[[[{"k":[1]}]]]]}"#,
        "123", "-7", "true", "null", "\"\"", "[]", "{}",
    ])
    func agreesWithFoundation(_ text: String) throws {
        #expect(try JSONText.parse(text) == foundation(text))
        #expect(try JSONText.parse(Array(text.utf8)) == foundation(text))
    }

    @Test(arguments: [
        "", "   ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", ".5", "-", "1e", "+1",
        "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}b\"", "1 2", "{} []",
        "NaN", "Infinity", "1e999",
    ])
    func rejectsWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONText.SyntaxError.self) { try JSONText.parse(text) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() throws {
        #expect(throws: JSONText.SyntaxError.self) { try JSONText.parse([0x22, 0xFF, 0xFE, 0x22]) }
        #expect(throws: JSONText.SyntaxError.self) { try JSONText.parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)) }
        #expect(try JSONText.parse(String(repeating: "[", count: 500) + String(repeating: "]", count: 500)) != .null)
    }

    @Test func writesWhatFoundationReadsBack() throws {
        let value: JSONValue = [
            "text": "quote \" backslash \\ slash / newline \n tab \t bell \u{07} nul \u{00} ünï 😀",
            "numbers": [0, -1, .int(Int.max), .int(Int.min), .double(0.5), .double(-2.25), .double(1e-7), .double(1e300)],
            "flags": [true, false, .null],
            "nested": ["empty": [:], "list": []],
        ]
        let text = JSONText.string(value)
        #expect(try foundation(text) == value)
        #expect(try JSONText.parse(text) == value)
        #expect(text.contains("slash /"))
        #expect(JSONText.string(.double(.nan)) == "null")
        #expect(JSONText.string(.double(.infinity)) == "null")
    }
}

/// The pooled CSPRNG bytes behind every id.
@Suite struct IdentifierTests {
    @Test func idsHaveThePrefixAnd24AlphanumericsAndDoNotRepeat() {
        var seen = Set<String>()
        for _ in 0..<5_000 {
            let id = IDPrefix.run.makeID()
            #expect(id.hasPrefix("run_"))
            let suffix = id.dropFirst(4)
            #expect(suffix.count == 24)
            #expect(suffix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            seen.insert(id)
        }
        #expect(seen.count == 5_000)
    }

    @Test func everyCharacterOfTheAlphabetIsUsedAboutEvenly() {
        var counts: [Character: Int] = [:]
        for _ in 0..<2_000 {
            for character in IDPrefix.message.makeID().dropFirst(4) { counts[character, default: 0] += 1 }
        }
        // 48,000 draws over 62 characters: about 774 each.
        #expect(counts.count == 62)
        #expect(counts.values.allSatisfy { (550...1_000).contains($0) })
    }
}
