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
    /// The `--config` file's top-level keys, to tell the ones no setting reads.
    private let fileKeys: [String]
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
            let text = FileManager.default.contents(atPath: filePath).map { String(decoding: $0, as: UTF8.self) } ?? ""  // blocking-ok: start-up
            let json = filePath.lowercased().hasSuffix(".json")
            fileKeys = Self.topLevelKeys(text, json: json)
            do {
                if json {
                    file = ConfigReader(provider: try await FileProvider<JSONSnapshot>(config: location))
                } else {
                    file = ConfigReader(provider: try await FileProvider<YAMLSnapshot>(config: location))
                }
            } catch {
                throw ConfigurationError("--config '\(filePath)': \(error)")
            }
        } else {
            file = nil
            fileKeys = []
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

    /// A name given to this server that no setting reads: a typo, or a setting of another
    /// version. Its value is ignored, and start-up says so (`serve` logs it, `config` prints it).
    public struct Unread: Sendable, Equatable, CustomStringConvertible {
        public var name: String
        public var source: Source
        /// The setting it is closest to, when one is close.
        public var suggestion: String?

        public var description: String {
            if source == .file && Settings.isReadFromEnvironmentOnly(name) {
                return "\(name) in the --config file is ignored: it is read from the environment only"
            }
            let origin = source == .file ? "in the --config file" : "in the environment"
            return "\(name) \(origin) is not a setting of this server and is ignored" + (suggestion.map { "; did you mean \($0)?" } ?? "")
        }
    }

    /// Variables read outside `value`, from the environment only (before the settings, or deep in a service).
    public static let readFromEnvironmentOnly: Set<String> = ["ASSISTANTS_LOG_FORMAT", "ASSISTANTS_MODEL_CACHE"]

    /// Whether `name` is read from the environment only: those above, and OpenTelemetry's own `OTEL_…`.
    static func isReadFromEnvironmentOnly(_ name: String) -> Bool {
        readFromEnvironmentOnly.contains(name) || name.hasPrefix("OTEL_")
    }

    /// Variables that the project's own scripts, benches and tests set for themselves beside the
    /// server's (`ASSISTANTS_SERVER_BIN`, `ASSISTANTS_TEST_…`): not reported.
    static func isToolVariable(_ name: String) -> Bool {
        ["ASSISTANTS_SERVER_BIN", "ASSISTANTS_BENCH_BIN", "ASSISTANTS_SPEC_PATH", "ASSISTANTS_TEST_"].contains { name.hasPrefix($0) }
    }

    /// The `ASSISTANTS_…` variables and `--config` keys that no lookup read; call it once every
    /// setting has been looked up.
    public func unread(environment: [String: String] = ProcessInfo.processInfo.environment) -> [Unread] {
        let read = Set(lookups.map(\.name))
        let known = read.union(Self.readFromEnvironmentOnly)
        var found: [Unread] = []
        for name in environment.keys.sorted() where name.hasPrefix("ASSISTANTS_") && !known.contains(name) && !Self.isToolVariable(name) {
            found.append(Unread(name: name, source: .environment, suggestion: Self.closest(to: name, among: known)))
        }
        for name in fileKeys where !read.contains(name) {
            found.append(Unread(name: name, source: .file, suggestion: Self.closest(to: name, among: read)))
        }
        return found
    }

    /// The top-level keys of a settings file: a JSON object's, or a YAML mapping's (the lines
    /// `KEY:` at the start of a line). Nested or unreadable content gives none.
    static func topLevelKeys(_ text: String, json: Bool) -> [String] {
        if json {
            guard case .object(let object)? = try? JSONText.parse(text) else { return [] }
            return object.keys.sorted()
        }
        return text.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard let first = line.first, first != "#", first != "-", !first.isWhitespace, let colon = line.firstIndex(of: ":") else { return nil }
            let key = line[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "\"' \t"))
            return key.isEmpty ? nil : key
        }
    }

    /// The name of `names` within a few edits of `name` (the fewest), if any.
    static func closest(to name: String, among names: Set<String>) -> String? {
        let scored = names.map { ($0, editDistance(name, $0)) }.filter { $0.1 <= 3 }
        return scored.min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }?.0
    }

    /// Levenshtein distance between two names, by UTF-8 bytes.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
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
