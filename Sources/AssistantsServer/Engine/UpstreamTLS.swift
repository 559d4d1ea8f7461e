import Foundation
import NIOSSL

/// The trust that model upstreams' certificates are checked against: the system's roots, plus
/// the CA certificates of `ASSISTANTS_UPSTREAM_CA_FILE` when it is set (a self-hosted model
/// behind TLS with an internal CA). The file is read once, at start-up, so that a missing or bad
/// file stops the server before it serves rather than failing its first run.
enum UpstreamTLS {
    /// The HTTP client's TLS configuration for `caFile`; nil: the HTTP client's default.
    static func configuration(caFile: String?) throws -> (tls: TLSConfiguration, certificates: Int)? {
        guard let caFile else { return nil }
        guard FileManager.default.isReadableFile(atPath: caFile) else {  // blocking-ok: start-up
            throw ConfigurationError("ASSISTANTS_UPSTREAM_CA_FILE: no readable file at '\(caFile)'")
        }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caFile)  // blocking-ok: start-up
        } catch {
            throw ConfigurationError("ASSISTANTS_UPSTREAM_CA_FILE: cannot read PEM certificates from '\(caFile)': \(error)")
        }
        guard !certificates.isEmpty else {
            throw ConfigurationError("ASSISTANTS_UPSTREAM_CA_FILE: '\(caFile)' holds no PEM certificate")
        }
        var tls = TLSConfiguration.makeClientConfiguration()  // the system's roots stay trusted
        tls.additionalTrustRoots = [.certificates(certificates)]
        return (tls, certificates.count)
    }
}
