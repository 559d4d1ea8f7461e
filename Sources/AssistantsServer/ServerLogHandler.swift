import Foundation
import Logging

/// The server's log handler: swift-log's `StreamLogHandler` line format on standard output, or
/// one JSON object a line (`ASSISTANTS_LOG_FORMAT=json`: time, level, label, message, source and
/// the metadata as fields), but metadata is formatted when a line is written, not each time it
/// is set. Hummingbird and the error middleware tag every request's logger, and formatting there
/// cost more than the logging.
public struct ServerLogHandler: LogHandler {
    /// How lines are written.
    public enum Format: String, Sendable {
        case text, json
    }

    public let label: String
    public let format: Format
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    /// Metadata of the task that logs (`LogContext`), under the handler's own.
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, format: Format = .text, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { own, _ in own } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        if format == .json {
            var line: [String: JSONValue] = ["time": .string(Self.timestamp()), "level": .string(event.level.rawValue),
                                             "label": .string(label), "source": .string(event.source), "message": .string("\(event.message)")]
            if !merged.isEmpty { line["metadata"] = .object(merged.mapValues(Self.json)) }
            Self.write(JSONValue.object(line).jsonString + "\n")
            return
        }
        let pretty = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        Self.write("\(Self.timestamp()) \(event.level)\(label.isEmpty ? "" : " ")\(label):\(pretty) [\(event.source)] \(event.message)\n")
    }

    private static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let value): .string(value.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let fields): .object(fields.mapValues(json))
        }
    }

    /// One write(2) per line, so lines from several threads do not interleave.
    private static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count, let base = bytes.baseAddress {
                let written = Foundation.write(STDOUT_FILENO, base + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
