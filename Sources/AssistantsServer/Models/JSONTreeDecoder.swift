/// Decodes the server's models from JSON text by way of a parsed `JSONValue` tree: the stored
/// objects a run reads (its thread's messages, the assistant) are decoded several times per run,
/// and their `JSONValue` fields (tools, content parts) are taken from the tree as they are instead
/// of being rebuilt through `Decoder` calls. Reads numbers as Foundation's decoder does (a whole
/// number is an integer, an integer is a double too). Coding paths are not tracked: errors name
/// the key or index, not the whole path.
enum JSONTreeDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try decode(type, from: JSONText.parse(text))
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        if T.self == JSONValue.self, let same = value as? T { return same }
        return try T(from: ValueDecoder(value: value))
    }

    fileprivate static func mismatch(_ type: Any.Type, _ value: JSONValue) -> DecodingError {
        .typeMismatch(type, .init(codingPath: [], debugDescription: "Expected \(type) but found \(value.typeDescription) instead."))
    }

    fileprivate static func bool(_ value: JSONValue) throws -> Bool {
        guard case .bool(let flag) = value else { throw mismatch(Bool.self, value) }
        return flag
    }

    fileprivate static func string(_ value: JSONValue) throws -> String {
        guard case .string(let text) = value else { throw mismatch(String.self, value) }
        return text
    }

    fileprivate static func floatingPoint<F: BinaryFloatingPoint>(_ value: JSONValue, as type: F.Type) throws -> F {
        switch value {
        case .int(let number): return F(number)
        case .double(let number): return F(number)
        default: throw mismatch(type, value)
        }
    }

    fileprivate static func integer<I: FixedWidthInteger>(_ value: JSONValue, as type: I.Type) throws -> I {
        switch value {
        case .int(let number):
            if let exact = I(exactly: number) { return exact }
        case .double(let number):
            if let exact = I(exactly: number) { return exact }
        default:
            break
        }
        throw mismatch(type, value)
    }
}

/// The decoder one value is read through.
private struct ValueDecoder: Decoder {
    let value: JSONValue
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let fields) = value else { throw JSONTreeDecoder.mismatch([String: JSONValue].self, value) }
        return KeyedDecodingContainer(KeyedReader(fields: fields))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else { throw JSONTreeDecoder.mismatch([JSONValue].self, value) }
        return UnkeyedReader(elements: elements)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueReader(value: value)
    }
}

private struct KeyedReader<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: [String: JSONValue]
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { fields.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

    /// The key's value; a missing key or (for a non-optional primitive) a null is an error.
    private func present(_ key: Key, _ type: Any.Type) throws -> JSONValue {
        guard let value = fields[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: [], debugDescription: "No value for key \"\(key.stringValue)\"."))
        }
        return value
    }

    private func nonNull(_ key: Key, _ type: Any.Type) throws -> JSONValue {
        let value = try present(key, type)
        guard value != .null else {
            throw DecodingError.valueNotFound(type, .init(codingPath: [key], debugDescription: "Expected \(type) but found null instead."))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try present(key, Never.self) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try JSONTreeDecoder.bool(nonNull(key, type)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try JSONTreeDecoder.string(nonNull(key, type)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try JSONTreeDecoder.floatingPoint(nonNull(key, type), as: type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try JSONTreeDecoder.floatingPoint(nonNull(key, type), as: type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try JSONTreeDecoder.integer(nonNull(key, type), as: type) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONTreeDecoder.decode(type, from: present(key, type))
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = fields[key.stringValue], value != .null else { return nil }
        return try JSONTreeDecoder.decode(type, from: value)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: present(key, [String: JSONValue].self)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: present(key, [JSONValue].self)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { ValueDecoder(value: fields["super"] ?? .null) }
    func superDecoder(forKey key: Key) throws -> any Decoder { ValueDecoder(value: fields[key.stringValue] ?? .null) }
}

private struct UnkeyedReader: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    var codingPath: [any CodingKey] { [] }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }
    private(set) var currentIndex = 0

    init(elements: [JSONValue]) {
        self.elements = elements
    }

    private mutating func next(_ type: Any.Type) throws -> JSONValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: [], debugDescription: "Unkeyed container is at end."))
        }
        defer { currentIndex += 1 }
        return elements[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { throw DecodingError.valueNotFound(Never.self, .init(codingPath: [], debugDescription: "Unkeyed container is at end.")) }
        if elements[currentIndex] == .null {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try JSONTreeDecoder.bool(next(type)) }
    mutating func decode(_ type: String.Type) throws -> String { try JSONTreeDecoder.string(next(type)) }
    mutating func decode(_ type: Double.Type) throws -> Double { try JSONTreeDecoder.floatingPoint(next(type), as: type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try JSONTreeDecoder.floatingPoint(next(type), as: type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONTreeDecoder.integer(next(type), as: type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONTreeDecoder.decode(type, from: next(type)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: next([String: JSONValue].self)).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: next([JSONValue].self)).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { ValueDecoder(value: try next(JSONValue.self)) }
}

private struct SingleValueReader: SingleValueDecodingContainer {
    let value: JSONValue
    var codingPath: [any CodingKey] { [] }

    private func nonNull(_ type: Any.Type) throws -> JSONValue {
        guard value != .null else {
            throw DecodingError.valueNotFound(type, .init(codingPath: [], debugDescription: "Expected \(type) but found null instead."))
        }
        return value
    }

    func decodeNil() -> Bool { value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try JSONTreeDecoder.bool(nonNull(type)) }
    func decode(_ type: String.Type) throws -> String { try JSONTreeDecoder.string(nonNull(type)) }
    func decode(_ type: Double.Type) throws -> Double { try JSONTreeDecoder.floatingPoint(nonNull(type), as: type) }
    func decode(_ type: Float.Type) throws -> Float { try JSONTreeDecoder.floatingPoint(nonNull(type), as: type) }
    func decode(_ type: Int.Type) throws -> Int { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: UInt.Type) throws -> UInt { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONTreeDecoder.integer(nonNull(type), as: type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONTreeDecoder.decode(type, from: value) }
}
