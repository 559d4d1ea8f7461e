import Logging

/// Where a log line's work came from, kept in task-locals so that work a request starts in the
/// background (a run) logs the id of the request that created it, and every line of a run says
/// which run: the process's log handler adds both (`hb.request.id`, `run_id`) to every line.
public enum LogContext {
    @TaskLocal public static var requestID: String?
    @TaskLocal public static var runID: String?

    public static let metadataProvider = Logger.MetadataProvider {
        var metadata: Logger.Metadata = [:]
        if let requestID { metadata["hb.request.id"] = .string(requestID) }
        if let runID { metadata["run_id"] = .string(runID) }
        return metadata
    }
}
