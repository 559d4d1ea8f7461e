/// The request side of attribute filters (`filters` of a vector store search): their shape is
/// checked where the request is parsed, naming the bad parameter; `AttributeFilter` applies them.
extension AttributeFilter {
    /// Checks a filter's shape, naming the bad parameter.
    static func validate(_ value: JSONValue, param: String) throws {
        guard case .object(let fields) = value else {
            throw APIError.invalidRequest("Invalid type for '\(param)': expected an object.", param: param, code: "invalid_type")
        }
        let request = JSONRequest(fields: fields, path: param + ".")
        let type = try request.required(request.string("type", allowed: ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "and", "or"]), "type")
        if type == "and" || type == "or" {
            try request.rejectUnknown(allowed: ["type", "filters"])
            let filters = try request.required(request.array("filters"), "filters")
            for (index, filter) in filters.enumerated() { try validate(filter, param: "\(param).filters[\(index)]") }
        } else {
            try request.rejectUnknown(allowed: ["type", "key", "value"])
            _ = try request.required(request.string("key"), "key")
            let value = try request.required(request.raw("value"), "value")
            let scalar: (JSONValue) -> Bool = {
                switch $0 {
                case .string, .int, .double, .bool: true
                default: false
                }
            }
            let valid: Bool
            if case .array(let items) = value {
                valid = items.allSatisfy { scalar($0) && $0.boolValue == nil }
            } else {
                valid = scalar(value)
            }
            guard valid else {
                throw request.typeError("value", expected: "a string, number, boolean or an array of strings and numbers", got: value)
            }
        }
    }
}
