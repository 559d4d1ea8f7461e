import Testing
@testable import AssistantsServer

/// A missing program is named with its feature and package, never blamed on the user's file.
@Suite struct RuntimeDependenciesTests {
    @Test func aMissingProgramNamesItsFeatureAndPackage() {
        let absent = RuntimeDependencies.Program(name: "pdftotext", paths: ["/nonexistent/pdftotext"], package: "poppler-utils",
                                                 feature: "PDF text extraction")
        #expect(absent.missingReason == "PDF text extraction needs poppler-utils (pdftotext), which is not installed on this server.")
        let present = RuntimeDependencies.Program(name: "sh", paths: ["/bin/sh"], package: "dash", feature: "shell")
        #expect(present.missingReason == nil)
    }
}
