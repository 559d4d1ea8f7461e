extension JSONText {
    /// Reads the fields it is asked for from JSON text of a known shape, in place, without
    /// building a `JSONValue` tree: a streamed chat chunk is read once per token, and its tree
    /// cost three dictionaries, an array and their strings. The caller walks objects and arrays
    /// and reads the scalars it wants; `skip()` passes over the rest, which is still checked as
    /// strict JSON, as `parse` checks it. Throws `SyntaxError`; a value of another type than the
    /// one asked for is left unread (the read returns nil or false).
    struct Reader {
        private var parser: Parser
        /// How deeply the value being read is nested in objects and arrays.
        private var depth = 0

        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            parser = Parser(bytes: bytes)
        }

        /// The next value's first byte, after any whitespace.
        private mutating func peek() throws -> UInt8 {
            parser.skipWhitespace()
            guard parser.index < parser.bytes.count else { throw parser.error("unexpected end of data") }
            return parser.bytes[parser.index]
        }

        /// Consumes a `null`; false (nothing read) when the next value is something else.
        mutating func null() throws -> Bool {
            guard try peek() == UInt8(ascii: "n") else { return false }
            try parser.literal("null")
            return true
        }

        /// Enters an object (its keys are then read with `key(first:)`); false when the next value is not one.
        mutating func object() throws -> Bool {
            try enter(UInt8(ascii: "{"))
        }

        /// Consumes the `open` bracket of an object or array, one level deeper; false when the
        /// next value starts otherwise.
        private mutating func enter(_ open: UInt8) throws -> Bool {
            guard try peek() == open else { return false }
            depth += 1
            guard depth <= JSONText.maxDepth else { throw parser.error("too deeply nested") }
            parser.index += 1
            return true
        }

        /// Consumes `close` if `byte`, the next one, is it: the object or array being read ends.
        private mutating func leave(_ close: UInt8, at byte: UInt8) -> Bool {
            guard byte == close else { return false }
            parser.index += 1
            depth -= 1
            return true
        }

        /// An object's key as its bytes in the text, compared with a name without making a string.
        struct Key {
            fileprivate let bytes: UnsafeBufferPointer<UInt8>

            static func ~= (name: StaticString, key: Key) -> Bool {
                key.bytes.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            }
        }

        /// The object's next key, its value to be read next; nil at the object's end. `first`
        /// starts true for each object. A key with an escape or a byte outside ASCII is not read
        /// here (a `SyntaxError` says so): the reader is for known shapes, whose keys are plain.
        mutating func key(first: inout Bool) throws -> Key? {
            var byte = try peek()
            if leave(UInt8(ascii: "}"), at: byte) { return nil }
            if first {
                first = false
            } else {
                guard byte == UInt8(ascii: ",") else { throw parser.error("expected ',' or '}'") }
                parser.index += 1
                byte = try peek()
            }
            guard byte == UInt8(ascii: "\"") else { throw parser.error("expected a string key") }
            let key = try plainString()
            guard try peek() == UInt8(ascii: ":") else { throw parser.error("expected ':'") }
            parser.index += 1
            return key
        }

        /// The bytes of the string at the cursor, passed over, when it is plain: printable ASCII
        /// without escapes. Anything else throws.
        private mutating func plainString() throws -> Key {
            let start = parser.index + 1
            var index = start
            let bytes = parser.bytes
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    parser.index = index + 1
                    return Key(bytes: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                }
                guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\") else {
                    throw parser.error("not a plain key")
                }
                index += 1
            }
            throw parser.error("unterminated string")
        }

        /// Enters an array (its elements are then read after each `element(first:)`); false when
        /// the next value is not one.
        mutating func array() throws -> Bool {
            try enter(UInt8(ascii: "["))
        }

        /// Whether the array has another element, to be read next; false at its end. `first`
        /// starts true for each array.
        mutating func element(first: inout Bool) throws -> Bool {
            let byte = try peek()
            if leave(UInt8(ascii: "]"), at: byte) { return false }
            if first {
                first = false
                return true
            }
            guard byte == UInt8(ascii: ",") else { throw parser.error("expected ',' or ']'") }
            parser.index += 1
            return true
        }

        /// The next value if it is a string; nil (nothing read) otherwise.
        mutating func string() throws -> String? {
            guard try peek() == UInt8(ascii: "\"") else { return nil }
            return try parser.string()
        }

        /// The next value if it is a number (an integer or a double, as `parse` reads it); nil
        /// (nothing read) otherwise.
        mutating func number() throws -> JSONValue? {
            let byte = try peek()
            guard byte == UInt8(ascii: "-") || parser.isDigit(byte) else { return nil }
            return try parser.number()
        }

        /// Passes over the next value, whatever it is. A plain string is passed over without
        /// making it (ids, model names and the like); any other value is read as `parse` reads it.
        mutating func skip() throws {
            if try peek() == UInt8(ascii: "\""), (try? plainString()) != nil { return }
            _ = try parser.value(depth: depth)
        }

        /// Checks that nothing but whitespace follows the value read.
        mutating func end() throws {
            parser.skipWhitespace()
            guard parser.index == parser.bytes.count else { throw parser.error("unexpected data after the value") }
        }
    }
}
