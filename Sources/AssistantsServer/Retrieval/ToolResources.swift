/// Makes a request's `tool_resources` real: inline `file_search.vector_stores` become stores
/// (named back by their ids), named stores and files must exist; and files attached to
/// messages with the file_search tool go into the thread's own vector store.
extension VectorStoreLibrary {
    func materialize(_ resources: JSONValue?, param: String = "tool_resources", session: StoreSession) async throws -> (JSONValue?, [VectorStoreFile]) {
        guard case .object(var fields)? = resources else { return (resources, []) }
        var added: [VectorStoreFile] = []
        if case .object(var search)? = fields["file_search"] {
            var ids = search["vector_store_ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
            for (index, id) in ids.enumerated() where try await !session.exists(.vectorStore, id: id) {
                throw DomainError.invalidRequest("No vector store found with id '\(id)'.", param: "\(param).file_search.vector_store_ids[\(index)]")
            }
            for (index, inline) in (search["vector_stores"]?.arrayValue ?? []).enumerated() {
                let (store, files) = try await create(NewVectorStore(inline: inline, param: "\(param).file_search.vector_stores[\(index)]"),
                                                      session: session)
                ids.append(store.id)
                added += files
            }
            if ids.count > 1 {
                throw DomainError.invalidRequest("Invalid '\(param).file_search': at most 1 vector store may be attached.",
                                              param: "\(param).file_search.vector_store_ids")
            }
            search["vector_store_ids"] = .array(ids.map { .string($0) })
            search["vector_stores"] = nil
            fields["file_search"] = .object(search)
        }
        for (index, fileID) in (fields["code_interpreter"]?["file_ids"]?.arrayValue ?? []).compactMap(\.stringValue).enumerated()
        where try await !session.exists(.file, id: fileID) {
            throw DomainError.invalidRequest("No file found with id '\(fileID)'.", param: "\(param).code_interpreter.file_ids[\(index)]")
        }
        return (.object(fields), added)
    }

    /// Files attached with the file_search tool go into the thread's vector store, made on first
    /// need (with a 7-day inactivity expiry, as OpenAI documented for thread stores).
    func attachToThread(_ messages: [Message], thread: inout AssistantThread, session: StoreSession) async throws -> [VectorStoreFile] {
        let fileIDs = messages.flatMap { message in
            (message.attachments ?? []).filter { attachment in
                (attachment["tools"]?.arrayValue ?? []).contains { $0["type"]?.stringValue == "file_search" }
            }.compactMap { $0["file_id"]?.stringValue }
        }
        guard !fileIDs.isEmpty else { return [] }
        var resources = thread.tool_resources?.objectValue ?? [:]
        var search = resources["file_search"]?.objectValue ?? [:]
        var storeID = search["vector_store_ids"]?.arrayValue?.first?.stringValue
        if storeID == nil {
            var store = VectorStore(id: IDPrefix.vectorStore.makeID(), created_at: unixNow())
            store.name = VectorStoreLibrary.threadStoreName(thread.id)
            store.expires_after = .init(anchor: "last_active_at", days: 7)
            store.expires_at = store.created_at + 7 * 86_400
            try await session.insert(store)
            storeID = store.id
            search["vector_store_ids"] = [.string(store.id)]
            resources["file_search"] = .object(search)
            thread.tool_resources = .object(resources)
        }
        guard let storeID else { return [] }
        return try await attach(fileIDs.map { .init(fileID: $0, attributes: [:], chunking: .auto) }, to: storeID, session: session,
                                fileParam: { _ in "attachments" })
    }
}
