import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import AssistantsServer

/// The playground page (issue 15): the embedded copy matches playground/, and the routes serve it
/// without an API key, with a strict Content-Security-Policy.
@Suite struct PlaygroundTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("playground")

    /// Fails when PlaygroundAssets.swift is out of date: run scripts/embed-playground.sh.
    @Test func embeddedAssetsMatchThePlaygroundFolder() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(names == PlaygroundAssets.files.keys.sorted(), "run scripts/embed-playground.sh")
        for name in names {
            let file = try String(contentsOf: Self.folder.appendingPathComponent(name), encoding: .utf8)
            let embedded = PlaygroundAssets.files[name]?.text
            #expect(embedded.map { $0 + "\n" == file || $0 == file } == true, "\(name) changed: run scripts/embed-playground.sh")
        }
        #expect(PlaygroundAssets.files["index.html"] != nil)
    }

    /// Nothing in the page's code builds HTML from strings (user and model text is set with textContent).
    @Test func scriptsNeverUseInnerHTML() throws {
        for (name, asset) in PlaygroundAssets.files {
            for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                #expect(!asset.text.contains(banned), "\(name) uses \(banned)")
            }
            if name.hasSuffix(".html") {
                #expect(!asset.text.contains("<script>"), "inline script in \(name)")
                #expect(!asset.text.contains("style="), "inline style in \(name)")
                #expect(!asset.text.contains("<style"), "inline style in \(name)")
            }
        }
    }

    static func header(_ fields: HTTPFields, _ name: String) -> String? {
        fields.first { $0.name.canonicalName == name.lowercased() }?.value
    }

    func withApp(_ body: @Sendable @escaping (any TestClientProtocol) async throws -> Void) async throws {
        let directory = TestSupport.temporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.databaseURL = "sqlite://\(directory)/db.sqlite"
        configuration.dataDirectory = directory
        configuration.apiKeys = ProjectKeys(["sk-a": "proj_a"])
        configuration.localModel = false
        let app = try await buildApplication(configuration: configuration, logger: TestSupport.logger)
        try await app.test(.router) { client in try await body(client) }
    }

    @Test func servesThePageWithoutAKeyAndWithAStrictPolicy() async throws {
        try await withApp { client async throws in
            try await client.execute(uri: "/", method: .get) { response async throws in
                #expect(response.status == .found)
                #expect(response.headers[.location] == "/playground")
            }
            try await client.execute(uri: "/playground", method: .get) { response async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                let csp = try #require(Self.header(response.headers, "Content-Security-Policy"))
                #expect(csp.contains("default-src 'self'"))
                #expect(csp.contains("script-src 'self'"))
                #expect(csp.contains("connect-src 'self'"))
                #expect(csp.contains("img-src 'self' blob: data:"))
                #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"))
                #expect(Self.header(response.headers, "X-Content-Type-Options") == "nosniff")
                #expect(String(buffer: response.body).contains("<!doctype html>"))
            }
            for (name, asset) in PlaygroundAssets.files {
                try await client.execute(uri: "/playground/\(name)", method: .get) { response async throws in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == asset.contentType)
                    #expect(Self.header(response.headers, "X-Content-Type-Options") == "nosniff")
                }
            }
            try await client.execute(uri: "/playground/config.json", method: .get) { response async throws in
                #expect(response.status == .ok)
                let config = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect((config?["models"] as? [String])?.isEmpty == false)
                #expect(config?["auth_required"] as? Bool == true)
            }
            try await client.execute(uri: "/playground/nope.js", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/playground/..%2FPackage.swift", method: .get) { #expect($0.status == .notFound) }
            // the API itself still needs the key
            try await client.execute(uri: "/v1/assistants", method: .get) { #expect($0.status == .unauthorized) }
        }
    }

    @Test func modelSuggestionsAreJSONEscaped() {
        #expect(PlaygroundController.jsonEscaped("a\"b\\c\n") == "a\\\"b\\\\c\\u000a")
    }
}
