import NIOCore
import NIOPosix
import PostgresNIO
import SQLiteNIO
import VaporCSQLite

/// Failures of the store that say nothing about the request: the database itself cannot be
/// used right now. The drivers throw it (and only they decide what counts as such); the HTTP
/// edge answers it 503 `server_error`, and background loops log it and try again later.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database cannot be reached or is not accepting work (stopped, restarting, out of
    /// connections, out of disk). Retrying later may succeed; the request's writes did not commit,
    /// or, when the connection broke during COMMIT, may have.
    case unavailable(reason: String)

    public var description: String {
        switch self {
        case .unavailable(let reason): "the database is unavailable: \(reason)"
        }
    }

    /// `error` as the store reports it: `.unavailable` when it means the database cannot be
    /// reached, else unchanged (a query's own error, a constraint, a domain error of the caller's).
    static func classify(_ error: any Error) -> any Error {
        if error is StoreError { return error }
        if let reason = unavailabilityReason(error) { return StoreError.unavailable(reason: reason) }
        return error
    }

    /// Why `error` means the database is out of reach, or nil when it does not.
    static func unavailabilityReason(_ error: any Error) -> String? {
        switch error {
        case let error as PSQLError:
            switch error.code {
            case .connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .clientClosedConnection,
                 .sslUnsupported, .failedToAddSSLHandler:
                // `String(describing:)` of a PSQLError hides its fields; name the code and the cause.
                return "\(error.code)" + (error.underlying.map { " (\($0))" } ?? "")
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                // 08: connection exception; 57P01-57P03: shut down, crashed, starting up;
                // 53300: too many connections; 53100: disk full.
                if state.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300", "53100"].contains(state) {
                    return "\(error.serverInfo?[.message] ?? "server error") (SQLSTATE \(state))"
                }
                return nil
            default:
                return nil
            }
        case let error where String(reflecting: type(of: error)).hasSuffix(".ConnectionPoolError"):
            // The pool's own error type is not public API of PostgresNIO (`_ConnectionPoolModule`):
            // its circuit breaker (connections failing for a minute) and its shutdown are known by name.
            let text = "\(error)"
            return text.contains("CircuitBreaker") || text.contains("poolShutdown") ? "no connection to the database (\(text))" : nil
        case is NIOConnectionError, is ChannelError:
            return "\(error)"
        case let error as IOError:
            return "\(error)"
        case let error as SQLiteFailure:
            // The file cannot be opened, read or written, or its disk is full: not the query's fault.
            let primary = error.code & 0xFF
            return [SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB, SQLITE_CORRUPT].contains(primary)
                ? error.description : nil
        default:
            return nil
        }
    }
}
