import Foundation
import Logging

/// The programs the server runs for some features, looked for at start: each missing one is
/// logged once with the feature it disables, and the feature's own error says the same, never
/// that the user's file is at fault. `scripts/serve` installs them on Debian.
struct RuntimeDependencies: Sendable {
    /// A program a feature needs.
    struct Program: Sendable {
        let name: String
        let paths: [String]
        let package: String
        let feature: String

        /// Why the feature cannot work here, or nil when the program is installed.
        var missingReason: String? {
            paths.contains { FileManager.default.isExecutableFile(atPath: $0) } ? nil
                : "\(feature) needs \(package) (\(name)), which is not installed on this server."
        }
    }

    static let pdftotext = Program(name: "pdftotext", paths: ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"],
                                   package: "poppler-utils", feature: "PDF text extraction")
    static let python = Program(name: "/usr/bin/python3", paths: ["/usr/bin/python3"], package: "python3",
                                feature: "code_interpreter")

    /// Python packages sandboxed code expects (Debian's, under /usr/lib/python3/dist-packages).
    static let sandboxPackages = [("numpy", "python3-numpy"), ("matplotlib", "python3-matplotlib")]

    /// Logs one line for each missing piece; returns how many were missing.
    @discardableResult
    static func check(logger: Logger) -> Int {
        var missing = 0
        for program in [pdftotext, python] {
            if let reason = program.missingReason {
                logger.warning("\(reason) It will not work until it is: apt-get install \(program.package)")
                missing += 1
            }
        }
        if python.missingReason == nil {
            for (module, package) in sandboxPackages
            where !FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/\(module)") {
                logger.warning("code_interpreter: the sandbox's Python has no \(module) (\(package)); code that imports it will fail: apt-get install \(package)")
                missing += 1
            }
        }
        return missing
    }
}
