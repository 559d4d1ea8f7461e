import Foundation
import Hummingbird

/// One field of a request body: left out, sent as `null`, or sent with a value.
/// Modify requests need all three: left out keeps a field, `null` clears it.
enum Field<Value> {
    case absent
    case null
    case value(Value)

    /// The value, or nil when left out or null.
    var value: Value? {
        if case .value(let value) = self { return value }
        return nil
    }

    var isAbsent: Bool {
        if case .absent = self { return true }
        return false
    }

    /// Applies a modify-request field to a stored optional: left out keeps it, null clears it.
    func apply(to target: inout Value?) {
        switch self {
        case .absent: break
        case .null: target = nil
        case .value(let value): target = value
        }
    }

    func map<T>(_ transform: (Value) throws -> T) rethrows -> Field<T> {
        switch self {
        case .absent: .absent
        case .null: .null
        case .value(let value): .value(try transform(value))
        }
    }
}

/// A JSON object from a request body whose fields are read with OpenAI-style validation:
/// every failure is a 400 `invalid_request_error` naming the parameter (`tools[0].type`).
struct JSONRequest {
    let fields: [String: JSONValue]
    /// The path of this object inside the body, for nested parameters ("thread.", "tools[0].").
    let path: String

    init(fields: [String: JSONValue], path: String = "") {
        self.fields = fields
        self.path = path
    }

    /// Reads and parses a request body that must be a JSON object. An empty body is an empty object.
    static func parse(_ request: Request, context: APIRequestContext) async throws -> JSONRequest {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch {
            throw APIError.invalidRequest("The request body is too large (the limit is \(context.maxUploadSize) bytes).")
        }
        if buffer.readableBytes == 0 || buffer.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return JSONRequest(fields: [:])
        }
        let value: JSONValue
        do {
            value = try JSONText.parse(buffer.readableBytesView)
        } catch {
            throw APIError.invalidRequest(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
            )
        }
        guard case .object(let fields) = value else {
            throw APIError.invalidRequest("Invalid body: expected an object, but got \(value.typeDescription) instead.", code: "invalid_type")
        }
        return JSONRequest(fields: fields)
    }

    func param(_ key: String) -> String { path + key }

    /// Rejects parameters the spec does not define for this request.
    func rejectUnknown(allowed: Set<String>) throws {
        for key in fields.keys.sorted() where !allowed.contains(key) {
            throw APIError.invalidRequest("Unrecognized request argument supplied: \(param(key))", param: param(key), code: "unknown_parameter")
        }
    }

    func raw(_ key: String) -> Field<JSONValue> {
        switch fields[key] {
        case nil: .absent
        case .null?: .null
        case let value?: .value(value)
        }
    }

    func typeError(_ key: String, expected: String, got value: JSONValue) -> APIError {
        .invalidRequest("Invalid type for '\(param(key))': expected \(expected), but got \(value.typeDescription) instead.",
                        param: param(key), code: "invalid_type")
    }

    func missing(_ key: String) -> APIError {
        .invalidRequest("Missing required parameter: '\(param(key))'.", param: param(key), code: "missing_required_parameter")
    }

    func required<T>(_ field: Field<T>, _ key: String) throws -> T {
        guard let value = field.value else { throw missing(key) }
        return value
    }

    func string(_ key: String, maxLength: Int? = nil, allowed: Set<String>? = nil) throws -> Field<String> {
        try raw(key).map { value in
            guard case .string(let string) = value else { throw typeError(key, expected: "a string", got: value) }
            if let maxLength, string.count > maxLength {
                throw APIError.invalidRequest(
                    "Invalid '\(param(key))': string too long. Expected a string with maximum length \(maxLength), but got a string with length \(string.count) instead.",
                    param: param(key), code: "string_above_max_length")
            }
            if let allowed, !allowed.contains(string) {
                throw APIError.invalidRequest(
                    "Invalid value: '\(string)'. Supported values are: \(allowed.sorted().map { "'\($0)'" }.joined(separator: ", ")).",
                    param: param(key), code: "invalid_value")
            }
            return string
        }
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws -> Field<Double> {
        try raw(key).map { value in
            guard let number = value.doubleValue else { throw typeError(key, expected: "a decimal", got: value) }
            if number < range.lowerBound {
                throw APIError.invalidRequest(
                    "Invalid '\(param(key))': decimal below minimum value. Expected a value >= \(Self.format(range.lowerBound)), but got \(Self.format(number)) instead.",
                    param: param(key), code: "decimal_below_min_value")
            }
            if number > range.upperBound {
                throw APIError.invalidRequest(
                    "Invalid '\(param(key))': decimal above maximum value. Expected a value <= \(Self.format(range.upperBound)), but got \(Self.format(number)) instead.",
                    param: param(key), code: "decimal_above_max_value")
            }
            return number
        }
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws -> Field<Int> {
        try raw(key).map { value in
            guard case .int(let number) = value else { throw typeError(key, expected: "an integer", got: value) }
            try Self.check(number, in: range, param: param(key))
            return number
        }
    }

    func bool(_ key: String) throws -> Field<Bool> {
        try raw(key).map { value in
            guard case .bool(let flag) = value else { throw typeError(key, expected: "a boolean", got: value) }
            return flag
        }
    }

    func array(_ key: String, maxItems: Int? = nil) throws -> Field<[JSONValue]> {
        try raw(key).map { value in
            guard case .array(let items) = value else { throw typeError(key, expected: "an array", got: value) }
            if let maxItems, items.count > maxItems {
                throw APIError.invalidRequest(
                    "Invalid '\(param(key))': array too long. Expected an array with maximum length \(maxItems), but got an array with length \(items.count) instead.",
                    param: param(key), code: "array_above_max_length")
            }
            return items
        }
    }

    /// An optional object that, when sent, must not be `null` (the spec gives it no `nullable`).
    func nonNullObject(_ key: String) throws -> JSONRequest? {
        if case .null = raw(key) { throw typeError(key, expected: "an object", got: .null) }
        return try object(key).value
    }

    /// A string that, when sent, must not be empty (`minLength: 1`, as `model`).
    func nonEmptyString(_ key: String, maxLength: Int? = nil) throws -> Field<String> {
        let field = try string(key, maxLength: maxLength)
        if field.value?.isEmpty == true {
            throw APIError.invalidRequest(
                "Invalid '\(param(key))': empty string. Expected a string with minimum length 1, but got an empty string instead.",
                param: param(key), code: "empty_string")
        }
        return field
    }

    func object(_ key: String) throws -> Field<JSONRequest> {
        try raw(key).map { value in
            guard case .object(let fields) = value else { throw typeError(key, expected: "an object", got: value) }
            return JSONRequest(fields: fields, path: param(key) + ".")
        }
    }

    /// An object of at most 16 properties (metadata, attributes).
    func smallObject(_ key: String, _ value: JSONValue) throws -> [String: JSONValue] {
        guard case .object(let pairs) = value else { throw typeError(key, expected: "an object", got: value) }
        if pairs.count > 16 {
            throw APIError.invalidRequest(
                "Invalid '\(param(key))': too many properties. Expected an object with at most 16 properties, but got an object with \(pairs.count) properties instead.",
                param: param(key), code: "object_above_max_properties")
        }
        return pairs
    }

    /// `metadata`: at most 16 string pairs, keys up to 64 and values up to 512 characters.
    func metadata(_ key: String = "metadata") throws -> Field<[String: String]> {
        try raw(key).map { value in
            let pairs = try smallObject(key, value)
            var result: [String: String] = [:]
            for (name, entry) in pairs {
                if name.count > 64 {
                    throw APIError.invalidRequest(
                        "Invalid '\(param(key))': metadata key '\(name.prefix(80))' is too long. Expected a key with maximum length 64, but got a key with length \(name.count) instead.",
                        param: param(key), code: "string_above_max_length")
                }
                guard case .string(let text) = entry else {
                    throw APIError.invalidRequest(
                        "Invalid type for '\(param(key)).\(name)': expected a string, but got \(entry.typeDescription) instead.",
                        param: param(key), code: "invalid_type")
                }
                if text.count > 512 {
                    throw APIError.invalidRequest(
                        "Invalid '\(param(key)).\(name)': string too long. Expected a string with maximum length 512, but got a string with length \(text.count) instead.",
                        param: param(key), code: "string_above_max_length")
                }
                result[name] = text
            }
            return result
        }
    }

    static func check(_ number: Int, in range: ClosedRange<Int>, param: String) throws {
        if number < range.lowerBound {
            throw APIError.invalidRequest(
                "Invalid '\(param)': integer below minimum value. Expected a value >= \(range.lowerBound), but got \(number) instead.",
                param: param, code: "integer_below_min_value")
        }
        if number > range.upperBound {
            throw APIError.invalidRequest(
                "Invalid '\(param)': integer above maximum value. Expected a value <= \(range.upperBound), but got \(number) instead.",
                param: param, code: "integer_above_max_value")
        }
    }

    static func format(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}
