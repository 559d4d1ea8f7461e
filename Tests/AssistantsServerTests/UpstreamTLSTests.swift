import Foundation
import Testing
@testable import AssistantsServer

/// `ASSISTANTS_UPSTREAM_CA_FILE`: read at start-up, and a missing or bad file stops the server
/// with a clear error rather than failing its first run.
@Suite struct UpstreamTLSTests {
    /// A throwaway self-signed CA (EC P-256), only parsed here.
    static let certificate = """
    -----BEGIN CERTIFICATE-----
    MIIBijCCAS+gAwIBAgIUeeeAbpvoQH0WQ4uEdOI2q7tWcKwwCgYIKoZIzj0EAwIw
    EjEQMA4GA1UEAwwHdGVzdCBDQTAeFw0yNjEyMDIwMDEzMTFaFw0yNjEyMDQwMDEz
    MTFaMBIxEDAOBgNVBAMMB3Rlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
    AAQYJs/LqlNeSRAPCZjXau7PNaREI4GZ2NDEWqboOrjk2OZb38SwLfsQ6XHI/UKn
    DZLCri3OrZdAXLkzHL/aNZneo2MwYTAdBgNVHQ4EFgQUsDVYOcFZ6iAGMXFx7C2D
    eeJQh6MwHwYDVR0jBBgwFoAUsDVYOcFZ6iAGMXFx7C2DeeJQh6MwDwYDVR0TAQH/
    BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSQAwRgIhAPKamdua
    zD/BbSHOANlxtzEMYPGodUrFJ374yczvUrIWAiEAjPcNOdeQkCYVwYo98Za3JiSw
    GLjcQyfm3BsRQ0/HMM4=
    -----END CERTIFICATE-----
    """

    @Test func caFileAddsItsCertificates() throws {
        #expect(try UpstreamTLS.configuration(caFile: nil) == nil)
        let path = TestSupport.temporaryDirectory() + "/ca.pem"
        try (Self.certificate + "\n" + Self.certificate + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let configured = try #require(try UpstreamTLS.configuration(caFile: path))
        #expect(configured.certificates == 2)
        #expect(configured.tls.trustRoots == .default)  // the system's roots stay
    }

    @Test func missingOrBadFileIsAConfigurationError() throws {
        let directory = TestSupport.temporaryDirectory()
        #expect(throws: ConfigurationError.self) { try UpstreamTLS.configuration(caFile: directory + "/missing.pem") }
        try "not a certificate\n".write(toFile: directory + "/bad.pem", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try UpstreamTLS.configuration(caFile: directory + "/bad.pem") }
    }
}
