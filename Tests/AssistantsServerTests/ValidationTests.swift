import Testing
@testable import AssistantsServer

/// Request validation: every failure is a 400 naming its parameter.
@Suite struct ValidationTests {
    func request(_ fields: [String: JSONValue]) -> JSONRequest { JSONRequest(fields: fields) }

    func param(of body: () throws -> Void) -> String? {
        do {
            try body()
            return "no error"
        } catch let error as APIError {
            #expect(error.status == .badRequest)
            return error.param
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func metadataLimits() {
        let tooMany = JSONValue.object(Dictionary(uniqueKeysWithValues: (0..<17).map { ("k\($0)", JSONValue.string("v")) }))
        #expect(param { _ = try request(["metadata": tooMany]).metadata() } == "metadata")
        #expect(param { _ = try request(["metadata": .object([String(repeating: "k", count: 65): "v"])]).metadata() } == "metadata")
        #expect(param { _ = try request(["metadata": .object(["k": .string(String(repeating: "v", count: 513))])]).metadata() } == "metadata")
        #expect(param { _ = try request(["metadata": .object(["k": 1])]).metadata() } == "metadata")
        #expect(param { _ = try request(["metadata": .object(["k": .string(String(repeating: "v", count: 512))])]).metadata() } == "no error")
    }

    @Test func numbersAndTypes() {
        #expect(param { _ = try request(["temperature": .double(2.5)]).number("temperature", in: 0...2) } == "temperature")
        #expect(param { _ = try request(["top_p": .int(-1)]).number("top_p", in: 0...1) } == "top_p")
        #expect(param { _ = try request(["top_p": .int(1)]).number("top_p", in: 0...1) } == "no error")
        #expect(param { _ = try request(["name": 5]).string("name") } == "name")
        #expect(param { _ = try request(["name": .string(String(repeating: "n", count: 257))]).string("name", maxLength: 256) } == "name")
        #expect(param { _ = try request([:]).required(request([:]).string("model"), "model") } == "model")
        #expect(param { try request(["bogus": 1]).rejectUnknown(allowed: ["model"]) } == "bogus")
    }

    @Test func tools() {
        #expect(param { _ = try request(["tools": [["type": "web_browser"]]]).tools(maxItems: 128) } == "tools[0].type")
        #expect(param { _ = try request(["tools": [["type": "function"]]]).tools(maxItems: 128) } == "tools[0].function")
        #expect(param { _ = try request(["tools": [["type": "function", "function": ["name": "bad name"]]]]).tools(maxItems: 128) }
            == "tools[0].function.name")
        #expect(param { _ = try request(["tools": [["type": "retrieval"]]]).tools(maxItems: 128) } == "tools[0].type")
        #expect(param { _ = try request(["tools": [["type": "retrieval"]]]).tools(maxItems: 128, version: .v1) } == "no error")
        let many = JSONValue.array(Array(repeating: ["type": "code_interpreter"], count: 21))
        #expect(param { _ = try request(["tools": many]).tools(maxItems: 20) } == "tools")
    }

    @Test func messageContent() throws {
        #expect(param { _ = try request(["content": .string(String(repeating: "x", count: 256_001))]).messageContent() } == "content")
        #expect(param { _ = try request(["content": []]).messageContent() } == "content")
        #expect(param { _ = try request(["content": [["type": "audio"]]]).messageContent() } == "content[0].type")
        let parts = try request(["content": [["type": "text", "text": "hi"], ["type": "image_url", "image_url": ["url": "https://x/y.png"]]]])
            .messageContent()
        #expect(parts.count == 2)
        #expect(parts[0]["text"]?["value"]?.stringValue == "hi")
        #expect(parts[1]["image_url"]?["detail"]?.stringValue == "auto")
    }

    @Test func projectKeys() throws {
        let keys = try ProjectKeys(parsing: "sk-a:alpha, sk-b:beta,sk-c")
        #expect(keys.project(forKey: "sk-a") == "alpha")
        #expect(keys.project(forKey: "sk-b") == "beta")
        #expect(keys.project(forKey: "sk-c") == "sk-c")
        #expect(keys.project(forKey: "sk-d") == nil)
        #expect(ProjectKeys().isOpen)
    }
}
