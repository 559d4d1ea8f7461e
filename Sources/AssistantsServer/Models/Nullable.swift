/// Marks an optional field that the wire format always carries, as `null` when absent.
///
/// Swift's synthesized `Encodable` leaves out `nil` optionals; the Assistants API instead
/// requires every field of an object to be present, with `null` where the spec says nullable.
@propertyWrapper
public struct Nullable<Value: Codable & Sendable>: Codable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue {
            try container.encode(wrappedValue)
        } else {
            try container.encodeNil()
        }
    }
}

extension KeyedEncodingContainer {
    /// The value itself, or `null`: what `Nullable.encode(to:)` writes, without the nested encoder
    /// and single-value container it takes (the synthesized `encode(to:)` picks this overload).
    public mutating func encode<Value>(_ value: Nullable<Value>, forKey key: Key) throws {
        if let wrapped = value.wrappedValue {
            try encode(wrapped, forKey: key)
        } else {
            try encodeNil(forKey: key)
        }
    }
}

extension KeyedDecodingContainer {
    /// A missing key decodes as `nil` rather than failing.
    public func decode<Value>(_ type: Nullable<Value>.Type, forKey key: Key) throws -> Nullable<Value> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}
