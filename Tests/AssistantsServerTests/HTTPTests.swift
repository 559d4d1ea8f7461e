import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import AssistantsServer

/// The handlers, in process: status codes, shapes and error bodies.
@Suite struct HTTPTests {
    func withApp(keys: ProjectKeys = ProjectKeys(), _ body: @Sendable @escaping (any TestClientProtocol) async throws -> Void) async throws {
        let directory = TestSupport.temporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.databaseURL = "sqlite://\(directory)/db.sqlite"
        configuration.dataDirectory = directory
        configuration.apiKeys = keys
        configuration.localModel = false
        let app = try await buildApplication(configuration: configuration, logger: TestSupport.logger)
        try await app.test(.router) { client in try await body(client) }
    }

    static func json(_ buffer: ByteBuffer) throws -> JSONValue {
        try JSONCoding.decoder.decode(JSONValue.self, from: Data(buffer.readableBytesView))
    }

    @Test func assistantRoundTrip() async throws {
        try await withApp { client async throws in
            let created = try await client.execute(uri: "/v1/assistants", method: .post, headers: [.contentType: "application/json"],
                                                   body: ByteBuffer(string: #"{"model":"gpt-4o","name":"Tutor","metadata":{"k":"v"}}"#)) { response async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                return try Self.json(response.body)
            }
            let id = try #require(created["id"]?.stringValue)
            #expect(id.hasPrefix("asst_"))
            #expect(created["object"]?.stringValue == "assistant")
            #expect(created["description"] == .null)
            #expect(created["tools"] == [])
            try await client.execute(uri: "/v1/assistants/\(id)", method: .get) { response async throws in
                #expect(response.status == .ok)
                #expect(try Self.json(response.body)["name"]?.stringValue == "Tutor")
            }
            try await client.execute(uri: "/v1/assistants/\(id)", method: .delete) { response async throws in
                #expect(try Self.json(response.body) == ["id": .string(id), "object": "assistant.deleted", "deleted": true])
            }
            try await client.execute(uri: "/v1/assistants/\(id)", method: .get) { response async throws in
                #expect(response.status == .notFound)
                let error = try Self.json(response.body)["error"]
                #expect(error?["message"]?.stringValue == "No assistant found with id '\(id)'.")
                #expect(error?["type"]?.stringValue == "invalid_request_error")
                #expect(error?["param"] == .null)
                #expect(error?["code"] == .null)
            }
        }
    }

    @Test func validationErrorsName400Params() async throws {
        try await withApp { client async throws in
            for (body, param) in [(#"{}"#, "model"), (#"{"model":"m","temperature":3}"#, "temperature"), (#"[1]"#, nil as String?),
                                  (#"{"model":"m","tools":[{"type":"x"}]}"#, "tools[0].type"), (#"{"model":"m","extra":1}"#, "extra")] {
                try await client.execute(uri: "/v1/assistants", method: .post, body: ByteBuffer(string: body)) { response async throws in
                    #expect(response.status == .badRequest, "\(body)")
                    #expect(try Self.json(response.body)["error"]?["param"]?.stringValue == param, "\(body)")
                }
            }
            try await client.execute(uri: "/v1/assistants", method: .post, body: ByteBuffer(string: "{nope")) { response async throws in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/assistants?limit=abc", method: .get) { response async throws in
                #expect(response.status == .badRequest)
                #expect(try Self.json(response.body)["error"]?["param"]?.stringValue == "limit")
            }
            try await client.execute(uri: "/v1/assistants?limit=101", method: .get) { response async throws in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/no/such/route", method: .get) { response async throws in
                #expect(response.status == .notFound)
                #expect(try Self.json(response.body)["error"]?["message"]?.stringValue?.hasPrefix("Invalid URL") == true)
            }
        }
    }

    @Test func messagesNeedTheirThreadAndNoActiveRun() async throws {
        try await withApp { client async throws in
            try await client.execute(uri: "/v1/threads/thread_missing/messages", method: .post,
                                     body: ByteBuffer(string: #"{"role":"user","content":"hi"}"#)) { response async throws in
                #expect(response.status == .notFound)
            }
            let thread = try await client.execute(uri: "/v1/threads", method: .post, body: ByteBuffer(string: "{}")) { try Self.json($0.body) }
            let threadID = try #require(thread["id"]?.stringValue)
            try await client.execute(uri: "/v1/threads/\(threadID)/messages", method: .post,
                                     body: ByteBuffer(string: #"{"role":"system","content":"hi"}"#)) { response async throws in
                #expect(response.status == .badRequest)
                #expect(try Self.json(response.body)["error"]?["param"]?.stringValue == "role")
            }
            let message = try await client.execute(uri: "/v1/threads/\(threadID)/messages", method: .post,
                                                   body: ByteBuffer(string: #"{"role":"user","content":[{"type":"text","text":"hi"}]}"#)) { try Self.json($0.body) }
            #expect(message["content"]?.arrayValue?.first?["text"]?["value"]?.stringValue == "hi")
            #expect(message["run_id"] == .null)
        }
    }

    @Test func keysSeparateProjects() async throws {
        let keys = try ProjectKeys(parsing: "sk-a:alpha,sk-b:beta")
        try await withApp(keys: keys) { client async throws in
            try await client.execute(uri: "/v1/assistants", method: .get) { response async throws in
                #expect(response.status == .unauthorized)
                #expect(try Self.json(response.body)["error"]?["code"]?.stringValue == "invalid_api_key")
            }
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
            let created = try await client.execute(uri: "/v1/assistants", method: .post, headers: [.authorization: "Bearer sk-a"],
                                                   body: ByteBuffer(string: #"{"model":"m"}"#)) { try Self.json($0.body) }
            let id = try #require(created["id"]?.stringValue)
            try await client.execute(uri: "/v1/assistants/\(id)", method: .get, headers: [.authorization: "Bearer sk-b"]) { response async throws in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/v1/assistants/\(id)", method: .get, headers: [.authorization: "Bearer sk-a"]) { response async throws in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func runsFailClearlyWithoutAnUpstream() async throws {
        try await withApp { client async throws in
            let assistant = try await client.execute(uri: "/v1/assistants", method: .post, body: ByteBuffer(string: #"{"model":"m"}"#)) { try Self.json($0.body) }
            let assistantID = try #require(assistant["id"]?.stringValue)
            let run = try await client.execute(uri: "/v1/threads/runs", method: .post,
                                               body: ByteBuffer(string: #"{"assistant_id":"\#(assistantID)"}"#)) { try Self.json($0.body) }
            #expect(run["status"]?.stringValue == "queued")
            let runID = try #require(run["id"]?.stringValue)
            let threadID = try #require(run["thread_id"]?.stringValue)
            var status = "queued"
            var last: JSONValue = .null
            for _ in 0..<100 where status == "queued" || status == "in_progress" {
                try await Task.sleep(for: .milliseconds(20))
                last = try await client.execute(uri: "/v1/threads/\(threadID)/runs/\(runID)", method: .get) { try Self.json($0.body) }
                status = last["status"]?.stringValue ?? ""
            }
            #expect(status == "failed")
            #expect(last["last_error"]?["message"]?.stringValue?.contains("ASSISTANTS_UPSTREAM_URL") == true)
        }
    }
}
