/// Encodes the server's models (anything `Encodable` made of strings, numbers, booleans, arrays,
/// dictionaries and `JSONValue`) to compact JSON, with object keys in the order the type encodes
/// them: for the API's objects that is the spec's order, and the same object always gives the same
/// text. The text is what Foundation's `JSONEncoder` with `.withoutEscapingSlashes` writes, up to
/// key order; it takes a fraction of the time, because it builds a plain tree and skips the dynamic
/// casts Foundation makes for every value (Date, Data, URL, …, none of which the models use:
/// such a value is written by its own `encode(to:)`). Coding paths are not tracked.
enum OrderedJSONEncoder {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(1024)
        try TreeEncoder.node(for: value).write(to: &output)
        return output
    }

    static func string<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }
}

/// One value of the tree being encoded.
private enum Node {
    case literal(String)  // null, true, false and numbers, as written
    case string(String)
    case object(ObjectNode)
    case array(ArrayNode)
    case json(JSONValue)
    /// A super-encoder's value, known once its caller has finished with it.
    case deferred(TreeEncoder)

    static var null: Node { .literal("null") }

    func write(to output: inout [UInt8]) throws {
        switch self {
        case .literal(let text):
            output.append(contentsOf: text.utf8)
        case .string(let text):
            JSONText.writeString(text, to: &output)
        case .json(let value):
            JSONText.write(value, to: &output)
        case .deferred(let encoder):
            try (encoder.node ?? .object(ObjectNode())).write(to: &output)
        case .array(let array):
            output.append(UInt8(ascii: "["))
            for (offset, element) in array.elements.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                try element.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for offset in object.members.indices {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                JSONText.writeString(object.members[offset].key, to: &output)
                output.append(UInt8(ascii: ":"))
                try object.members[offset].value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func number<N: BinaryFloatingPoint & LosslessStringConvertible>(_ value: N) throws -> Node {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Unable to encode \(value) directly in JSON."))
        }
        return .literal(JSONText.numberText(value))
    }
}

/// An object's members in the order they were encoded. Its one owner (the encoder) is never
/// reentered while it appends, so the accesses are not checked at run time.
private final class ObjectNode {
    @exclusivity(unchecked) var members: [(key: String, value: Node)] = []

    init() {
        // Room for a small object's members without growing the array from 1, 2, 4.
        members.reserveCapacity(8)
    }

    func append(_ key: some CodingKey, _ value: Node) {
        members.append((key.stringValue, value))
    }
}

private final class ArrayNode {
    @exclusivity(unchecked) var elements: [Node] = []
}

/// The `Encoder` a value encodes itself into; `node` is what it wrote.
private final class TreeEncoder: Encoder {
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    @exclusivity(unchecked) var node: Node?

    /// The tree of one value: strings and `JSONValue`s directly, anything else by its `encode(to:)`.
    static func node<T: Encodable>(for value: T) throws -> Node {
        if T.self == String.self, let text = value as? String { return .string(text) }
        if T.self == JSONValue.self, let json = value as? JSONValue { return .json(json) }
        let encoder = TreeEncoder()
        try value.encode(to: encoder)
        return encoder.node ?? .object(ObjectNode())
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object(let object)? = node { return KeyedEncodingContainer(KeyedWriter(object: object)) }
        let object = ObjectNode()
        node = .object(object)
        return KeyedEncodingContainer(KeyedWriter(object: object))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array(let array)? = node { return UnkeyedWriter(array: array) }
        let array = ArrayNode()
        node = .array(array)
        return UnkeyedWriter(array: array)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueWriter(encoder: self)
    }
}

private struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let object: ObjectNode
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws { object.append(key, .null) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { object.append(key, .literal(value ? "true" : "false")) }
    mutating func encode(_ value: String, forKey key: Key) throws { object.append(key, .string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { object.append(key, try .number(value)) }
    mutating func encode(_ value: Float, forKey key: Key) throws { object.append(key, try .number(value)) }
    mutating func encode(_ value: Int, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { object.append(key, .literal(String(value))) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { object.append(key, try TreeEncoder.node(for: value)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = ObjectNode()
        object.append(key, .object(child))
        return KeyedEncodingContainer(KeyedWriter<NestedKey>(object: child))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = ArrayNode()
        object.append(key, .array(child))
        return UnkeyedWriter(array: child)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = TreeEncoder()
        object.members.append(("super", .deferred(encoder)))
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let encoder = TreeEncoder()
        object.append(key, .deferred(encoder))
        return encoder
    }
}

private struct UnkeyedWriter: UnkeyedEncodingContainer {
    let array: ArrayNode
    var codingPath: [any CodingKey] { [] }
    var count: Int { array.elements.count }

    mutating func encodeNil() throws { array.elements.append(.null) }
    mutating func encode(_ value: Bool) throws { array.elements.append(.literal(value ? "true" : "false")) }
    mutating func encode(_ value: String) throws { array.elements.append(.string(value)) }
    mutating func encode(_ value: Double) throws { array.elements.append(try .number(value)) }
    mutating func encode(_ value: Float) throws { array.elements.append(try .number(value)) }
    mutating func encode(_ value: Int) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: Int8) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: Int16) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: Int32) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: Int64) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: UInt) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: UInt8) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: UInt16) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: UInt32) throws { array.elements.append(.literal(String(value))) }
    mutating func encode(_ value: UInt64) throws { array.elements.append(.literal(String(value))) }
    mutating func encode<T: Encodable>(_ value: T) throws { array.elements.append(try TreeEncoder.node(for: value)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = ObjectNode()
        array.elements.append(.object(child))
        return KeyedEncodingContainer(KeyedWriter<NestedKey>(object: child))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = ArrayNode()
        array.elements.append(.array(child))
        return UnkeyedWriter(array: child)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = TreeEncoder()
        array.elements.append(.deferred(encoder))
        return encoder
    }
}

private struct SingleValueWriter: SingleValueEncodingContainer {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { encoder.node = .null }
    mutating func encode(_ value: Bool) throws { encoder.node = .literal(value ? "true" : "false") }
    mutating func encode(_ value: String) throws { encoder.node = .string(value) }
    mutating func encode(_ value: Double) throws { encoder.node = try .number(value) }
    mutating func encode(_ value: Float) throws { encoder.node = try .number(value) }
    mutating func encode(_ value: Int) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: Int8) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: Int16) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: Int32) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: Int64) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: UInt) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: UInt8) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: UInt16) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: UInt32) throws { encoder.node = .literal(String(value)) }
    mutating func encode(_ value: UInt64) throws { encoder.node = .literal(String(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws { encoder.node = try TreeEncoder.node(for: value) }
}
