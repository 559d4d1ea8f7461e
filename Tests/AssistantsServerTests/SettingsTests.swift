import Foundation
import Testing
@testable import AssistantsServer

/// Names given to the server that no setting reads (a typo, a setting of another version) are
/// told apart from the settings, so that start-up can say they are ignored.
@Suite struct SettingsTests {
    private func file(_ name: String, _ text: String) throws -> String {
        let path = TestSupport.temporaryDirectory() + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func variablesAndFileKeysThatNoSettingReadsAreReported() async throws {
        let path = try file("server.yaml", """
            # settings
            ASSISTANTS_PORT: 9090
            "ASSISTANTS_UPSTREAM_UR": http://127.0.0.1:1/v1
            ASSISTANTS_LOG_FORMAT: json
            OTEL_EXPORTER_OTLP_ENDPOINT: http://127.0.0.1:4318
            nested:
              ASSISTANTS_NOT_TOP_LEVEL: 1
            """)
        let settings = try await Settings(filePath: path)
        for name in ["ASSISTANTS_PORT", "ASSISTANTS_UPSTREAM_URL", "ASSISTANTS_HOST"] { _ = settings.value(nil, name) }
        let unread = settings.unread(environment: [
            "ASSISTANTS_HOST": "127.0.0.1", "ASSISTANTS_HSOT": "x", "ASSISTANTS_LOG_FORMAT": "json",
            "ASSISTANTS_SERVER_BIN": "/bin/x", "ASSISTANTS_TEST_CANARY": "y", "ASSISTANTS_SOMETHING_ELSE_ENTIRELY": "z", "PATH": "/bin",
        ])
        let expected: [Settings.Unread] = [
            .init(name: "ASSISTANTS_HSOT", source: .environment, suggestion: "ASSISTANTS_HOST"),
            .init(name: "ASSISTANTS_SOMETHING_ELSE_ENTIRELY", source: .environment, suggestion: nil),
            .init(name: "ASSISTANTS_UPSTREAM_UR", source: .file, suggestion: "ASSISTANTS_UPSTREAM_URL"),
            .init(name: "ASSISTANTS_LOG_FORMAT", source: .file, suggestion: nil),
            .init(name: "OTEL_EXPORTER_OTLP_ENDPOINT", source: .file, suggestion: nil),
            .init(name: "nested", source: .file, suggestion: nil),
        ]
        #expect(unread == expected)
        for name in ["ASSISTANTS_LOG_FORMAT", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
            #expect(unread.first { $0.name == name }?.description.contains("read from the environment only") == true, "\(name)")
        }
        #expect(unread.first { $0.name == "nested" }?.description.contains("is not a setting of this server") == true)
        #expect(unread.first { $0.name == "ASSISTANTS_HSOT" }?.description.hasSuffix("did you mean ASSISTANTS_HOST?") == true)
    }

    @Test func jsonFileKeysAreItsObjectsKeys() {
        #expect(Settings.topLevelKeys(#"{"ASSISTANTS_PORT": 1, "b": {"c": 2}}"#, json: true) == ["ASSISTANTS_PORT", "b"])
        #expect(Settings.topLevelKeys("[1, 2]", json: true) == [])
    }

    @Test func editDistanceCountsInsertionsDeletionsAndSubstitutions() {
        #expect(Settings.editDistance("ASSISTANTS_PORT", "ASSISTANTS_PORT") == 0)
        #expect(Settings.editDistance("ASSISTANTS_PROT", "ASSISTANTS_PORT") == 2)
        #expect(Settings.editDistance("ASSISTANTS_UPSTREAM_UR", "ASSISTANTS_UPSTREAM_URL") == 1)
        #expect(Settings.editDistance("", "abc") == 3 && Settings.editDistance("abc", "") == 3)
        #expect(Settings.closest(to: "ASSISTANTS_PORTS", among: ["ASSISTANTS_PORT", "ASSISTANTS_HOST"]) == "ASSISTANTS_PORT")
        #expect(Settings.closest(to: "ASSISTANTS_WHATEVER", among: ["ASSISTANTS_PORT"]) == nil)
    }
}
