import Foundation

/// The API keys the server accepts and the project each one opens (`ASSISTANTS_API_KEYS`).
public struct ProjectKeys: Sendable {
    /// The one project of a server that runs without keys.
    public static let defaultProject = "default"

    private let projectByKey: [String: String]

    /// Keys off: any bearer token, or none, is the default project.
    public var isOpen: Bool { projectByKey.isEmpty }

    public init(_ projectByKey: [String: String] = [:]) {
        self.projectByKey = projectByKey
    }

    /// Parses `key:project,key2:project2`. A pair without a project names the key's own project.
    public init(parsing text: String) throws {
        var map: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let trimmed = pair.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let parts = trimmed.split(separator: ":", maxSplits: 1).map(String.init)
            guard let key = parts.first, !key.isEmpty else {
                throw ConfigurationError("ASSISTANTS_API_KEYS: empty key in '\(trimmed)'")
            }
            let project = parts.count > 1 && !parts[1].isEmpty ? parts[1] : key
            map[key] = project
        }
        self.projectByKey = map
    }

    /// The project of a presented key, or nil when the key is unknown.
    public func project(forKey key: String) -> String? {
        projectByKey[key]
    }
}

/// A configuration the server cannot start with.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
