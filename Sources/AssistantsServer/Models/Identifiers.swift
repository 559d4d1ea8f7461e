import Foundation
import NIOConcurrencyHelpers

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

    /// A new id: the prefix and 24 random alphanumerics from the system's CSPRNG, mapped
    /// without bias (bytes >= 248 are skipped).
    public func makeID() -> String {
        rawValue + RandomBytes.shared.alphanumerics(24, alphabet: Self.alphabet)
    }
}

/// Bytes from the system's CSPRNG, fetched 4 KiB per system call instead of 8 bytes per call:
/// a run makes a dozen ids, and a syscall each was a visible part of its CPU.
final class RandomBytes: Sendable {
    static let shared = RandomBytes()
    private static let capacity = 4096

    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: RandomBytes.capacity)
        var next = RandomBytes.capacity
    }
    private let pool = NIOLockedValueBox(Pool())

    /// `count` characters of `alphabet` (at most 248 long), each from one unbiased random byte.
    func alphanumerics(_ count: Int, alphabet: [UInt8]) -> String {
        let limit = 248 - 248 % alphabet.count
        var characters: [UInt8] = []
        characters.reserveCapacity(count)
        pool.withLockedValue { pool in
            while characters.count < count {
                if pool.next == pool.bytes.count {
                    Self.fill(&pool.bytes)
                    pool.next = 0
                }
                let byte = Int(pool.bytes[pool.next])
                pool.next += 1
                if byte < limit { characters.append(alphabet[byte % alphabet.count]) }
            }
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// One call to the system's CSPRNG (getrandom on Linux) for the whole buffer.
    private static func fill(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            arc4random_buf(base, buffer.count)
        }
    }
}

/// Unix time in whole seconds, the API's timestamp unit.
public func unixNow() -> Int {
    Int(Date().timeIntervalSince1970)
}
