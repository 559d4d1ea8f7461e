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

    /// A new id: the prefix and 24 random alphanumerics from the system's CSPRNG, drawn eight
    /// bytes at a time (one syscall each) and mapped without bias (bytes >= 248 are skipped).
    public func makeID() -> String {
        var generator = SystemRandomNumberGenerator()
        var characters: [UInt8] = []
        characters.reserveCapacity(24)
        while characters.count < 24 {
            var word = generator.next()
            for _ in 0..<8 where characters.count < 24 {
                let byte = UInt8(truncatingIfNeeded: word)
                word >>= 8
                if byte < 248 { characters.append(Self.alphabet[Int(byte % 62)]) }
            }
        }
        return rawValue + String(decoding: characters, as: UTF8.self)
    }
}

/// Unix time in whole seconds, the API's timestamp unit.
public func unixNow() -> Int {
    Int(Date().timeIntervalSince1970)
}
