/// Checks a value against the parts of JSON Schema that function parameters use: `type`,
/// `properties`, `required`, `additionalProperties: false`, `items`, `enum`, `const`,
/// `anyOf`/`oneOf`/`allOf`, numeric and length bounds. Unknown keywords are ignored.
enum JSONSchemaValidator {
    /// The problems found, each with its path; empty when the value conforms.
    static func problems(_ value: JSONValue, schema: JSONValue, path: String = "$") -> [String] {
        guard case .object(let rules) = schema else { return [] }
        var found: [String] = []
        if let type = rules["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !allowed.isEmpty && !allowed.contains(where: { matches(value, type: $0) }) {
                return ["\(path): expected \(allowed.joined(separator: " or ")), got \(value.typeDescription)"]
            }
        }
        if let options = rules["enum"]?.arrayValue, !options.contains(value) {
            found.append("\(path): must be one of \(JSONValue.array(options).jsonString)")
        }
        if let constant = rules["const"], constant != value {
            found.append("\(path): must be \(constant.jsonString)")
        }
        for key in ["anyOf", "oneOf"] {
            if let branches = rules[key]?.arrayValue, !branches.contains(where: { problems(value, schema: $0, path: path).isEmpty }) {
                found.append("\(path): matches none of the \(key) alternatives")
            }
        }
        for branch in rules["allOf"]?.arrayValue ?? [] {
            found += problems(value, schema: branch, path: path)
        }
        switch value {
        case .object(let fields):
            for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where fields[name] == nil {
                found.append("\(path): missing required property '\(name)'")
            }
            let properties = rules["properties"]?.objectValue ?? [:]
            for (name, field) in fields {
                if let rule = properties[name] {
                    found += problems(field, schema: rule, path: path + "." + name)
                } else if rules["additionalProperties"] == .bool(false) {
                    found.append("\(path): unexpected property '\(name)'")
                } else if let rule = rules["additionalProperties"], rule.objectValue != nil {
                    found += problems(field, schema: rule, path: path + "." + name)
                }
            }
        case .array(let items):
            if let rule = rules["items"] {
                for (index, item) in items.enumerated() { found += problems(item, schema: rule, path: "\(path)[\(index)]") }
            }
            if let minimum = rules["minItems"]?.intValue, items.count < minimum { found.append("\(path): fewer than \(minimum) items") }
            if let maximum = rules["maxItems"]?.intValue, items.count > maximum { found.append("\(path): more than \(maximum) items") }
        case .int, .double:
            let number = value.doubleValue ?? 0
            if let minimum = rules["minimum"]?.doubleValue, number < minimum { found.append("\(path): below \(minimum)") }
            if let maximum = rules["maximum"]?.doubleValue, number > maximum { found.append("\(path): above \(maximum)") }
        case .string(let text):
            if let minimum = rules["minLength"]?.intValue, text.count < minimum { found.append("\(path): shorter than \(minimum)") }
            if let maximum = rules["maxLength"]?.intValue, text.count > maximum { found.append("\(path): longer than \(maximum)") }
        default:
            break
        }
        return found
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("null", .null), ("array", .array), ("object", .object): return true
        case ("integer", .int): return true
        case ("integer", .double(let number)): return number.rounded() == number
        case ("number", .int), ("number", .double): return true
        default: return false
        }
    }
}
