import Configuration
import Foundation

/// Where `serve` finds each setting, through swift-configuration, in one precedence: a flag, then
/// the environment variable, then the `--config` file (YAML or JSON, keyed by the variables' names:
/// `ASSISTANTS_PORT: 8080`), then the built-in default. Every lookup is remembered, for `config`;
/// used by one command's start-up only (not shared between tasks).
public final class Settings {
    /// Where a setting's value came from.
    public enum Source: String, Sendable {
        case flag, environment, file
    }

    /// Variables whose values are never printed whole.
    public static let secrets: Set<String> = ["ASSISTANTS_API_KEYS", "ASSISTANTS_UPSTREAM_API_KEY", "ASSISTANTS_DATABASE_URL"]

    private let environment: ConfigReader
    private let file: ConfigReader?
    public let filePath: String?
    /// Every setting looked up, in order, with its value and source (nil: the default).
    private(set) var lookups: [(name: String, value: String?, source: Source?)] = []

    public init(filePath: String?) async throws {
        environment = ConfigReader(provider: EnvironmentVariablesProvider())
        self.filePath = filePath
        if let filePath {
            guard FileManager.default.isReadableFile(atPath: filePath) else {
                throw ConfigurationError("--config: cannot read '\(filePath)'")
            }
            let location = ConfigReader(provider: InMemoryProvider(values: ["filePath": .init(.string(filePath), isSecret: false)]))
            do {
                if filePath.lowercased().hasSuffix(".json") {
                    file = ConfigReader(provider: try await FileProvider<JSONSnapshot>(config: location))
                } else {
                    file = ConfigReader(provider: try await FileProvider<YAMLSnapshot>(config: location))
                }
            } catch {
                throw ConfigurationError("--config '\(filePath)': \(error)")
            }
        } else {
            file = nil
        }
    }

    /// The setting `name`: `flag` when given, else the variable (an empty one counts as unset), else the file.
    public func value(_ flag: String?, _ name: String) -> String? {
        let found: (String, Source)?
        if let flag {
            found = (flag, .flag)
        } else if let text = environment.string(forKey: ConfigKey([name]), isSecret: Self.secrets.contains(name)), !text.isEmpty {
            found = (text, .environment)
        } else if let file, let text = Self.scalar(file, name) {
            found = (text, .file)
        } else {
            found = nil
        }
        lookups.append((name, found?.0, found?.1))
        return found?.0
    }

    /// A file value as text, whatever its type there (`8080`, `"8080"`, `true`, `0.5`).
    private static func scalar(_ reader: ConfigReader, _ name: String) -> String? {
        let key = ConfigKey([name])
        let secret = secrets.contains(name)
        if let text = reader.string(forKey: key, isSecret: secret) { return text }
        if let number = reader.int(forKey: key, isSecret: secret) { return String(number) }
        if let number = reader.double(forKey: key, isSecret: secret) { return String(number) }
        if let flag = reader.bool(forKey: key, isSecret: secret) { return flag ? "on" : "off" }
        return nil
    }

    /// `value` with secrets masked: keys keep their first 3 characters, a URL's password goes.
    public static func masked(_ name: String, _ value: String) -> String {
        switch name {
        case "ASSISTANTS_API_KEYS":
            return value.split(separator: ",").map { pair in
                let parts = pair.split(separator: ":", maxSplits: 1).map(String.init)
                let key = parts.first ?? ""
                return maskKey(key) + (parts.count > 1 ? ":" + parts[1] : "")
            }.joined(separator: ",")
        case "ASSISTANTS_UPSTREAM_API_KEY":
            return maskKey(value)
        case "ASSISTANTS_DATABASE_URL", "ASSISTANTS_UPSTREAM_URL":
            guard var components = URLComponents(string: value), components.password != nil else { return value }
            components.password = "***"
            return components.string ?? "***"
        default:
            return value
        }
    }

    private static func maskKey(_ key: String) -> String {
        key.count <= 6 ? "***" : String(key.prefix(3)) + "***"
    }

    /// The effective settings, one `NAME=value  # source` line each (secrets masked).
    public func report() -> String {
        var seen = Set<String>()
        var lines: [String] = []
        for lookup in lookups where seen.insert(lookup.name).inserted {
            if let value = lookup.value, let source = lookup.source {
                let origin = source == .file ? "file \(filePath ?? "")" : source.rawValue
                lines.append("\(lookup.name)=\(Self.masked(lookup.name, value))  # \(origin)")
            } else {
                lines.append("\(lookup.name)=  # default")
            }
        }
        return lines.joined(separator: "\n")
    }
}
