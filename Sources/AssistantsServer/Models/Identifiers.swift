import Foundation

/// The prefixes of the ids the API hands out (`asst_…`, `thread_…`, `file-…`).
public enum IDPrefix: String, Sendable {
    case assistant = "asst_"
    case thread = "thread_"
    case message = "msg_"
    case run = "run_"
    case step = "step_"
    case call = "call_"
    case file = "file-"
    case vectorStore = "vs_"
    case fileBatch = "vsfb_"
    case request = "req_"

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A new id: the prefix and 24 random alphanumerics from the system's CSPRNG.
    public func makeID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 24)
        for index in bytes.indices {
            bytes[index] = Self.alphabet[Int(generator.next(upperBound: UInt64(Self.alphabet.count)))]
        }
        return rawValue + String(decoding: bytes, as: UTF8.self)
    }
}

/// Unix time in whole seconds, the API's timestamp unit.
public func unixNow() -> Int {
    Int(Date().timeIntervalSince1970)
}
