/// A thread to create with its first messages, validated by the HTTP layer (thread create, or
/// `thread` of create-thread-and-run) and not yet stored.
struct NewThread: Sendable {
    var thread: AssistantThread
    var messages: [Message]

    /// Stores a validated new thread; file references must exist. Returns the thread as stored (with
    /// its JSON) and the vector-store files whose ingestion to start once committed.
    func insert(library: VectorStoreLibrary, session: StoreSession) async throws -> (Stored<AssistantThread>, [VectorStoreFile]) {
        for message in messages {
            try await message.checkFiles(session: session, blobs: library.ingestion.blobs)
        }
        var thread = thread
        var added: [VectorStoreFile]
        (thread.tool_resources, added) = try await library.materialize(thread.tool_resources, session: session)
        added += try await library.attachToThread(messages, thread: &thread, session: session)
        let body = try await session.insert(thread)
        for message in messages {
            try await session.insert(message)
        }
        return (Stored(thread, body: body), added)
    }
}
