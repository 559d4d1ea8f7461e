/// The vector indexes of the stores searched lately, within a memory budget
/// (`ASSISTANTS_VECTOR_CACHE_MB`), the least recently searched evicted first. An index is kept
/// with the store's generation (`vector_store_generations`) it was loaded at: a search that reads
/// another generation, because this or another server wrote or removed chunks of the store since,
/// loads it again. Concurrent searches of one store share a single load.
actor VectorIndexCache {
    /// Stores are cached per project, as every read is scoped to one.
    struct Key: Hashable, Sendable {
        var project: String
        var vectorStoreID: String
    }

    private struct Entry {
        var index: VectorIndex
        var generation: Int
        var lastUse: UInt64
    }

    let budgetBytes: Int
    private var entries: [Key: Entry] = [:]
    private var loads: [Key: (generation: Int, task: Task<VectorIndex, any Error>)] = [:]
    private var uses: UInt64 = 0
    /// Loads run so far (for tests and metrics).
    private(set) var loadCount = 0

    init(budgetBytes: Int) {
        self.budgetBytes = budgetBytes
    }

    /// The memory the cached indexes hold.
    var cachedBytes: Int { entries.values.reduce(0) { $0 + $1.index.byteSize } }

    /// The stores cached now, least recently used first.
    var cachedKeys: [Key] { entries.sorted { $0.value.lastUse < $1.value.lastUse }.map(\.key) }

    /// The store's index at `generation`: the cached one when current, else what `load` builds.
    func index(for key: Key, generation: Int, load: @escaping @Sendable () async throws -> VectorIndex) async throws -> VectorIndex {
        uses += 1
        if let entry = entries[key] {
            if entry.generation == generation {
                entries[key]?.lastUse = uses
                return entry.index
            }
            // Stale: free it before loading the new one, so a large store is never held twice.
            entries[key] = nil
        }
        if let pending = loads[key], pending.generation == generation {
            return try await pending.task.value
        }
        loadCount += 1
        let task = Task { try await load() }
        loads[key] = (generation, task)
        defer {
            if loads[key]?.generation == generation { loads[key] = nil }
        }
        let index = try await task.value
        keep(index, for: key, generation: generation)
        return index
    }

    /// Forgets a store's index (its chunks changed on this server); the next search loads it.
    func invalidate(vectorStoreID: String) {
        entries = entries.filter { $0.key.vectorStoreID != vectorStoreID }
    }

    private func keep(_ index: VectorIndex, for key: Key, generation: Int) {
        // An index larger than the whole budget serves the search that loaded it and is not kept.
        guard index.byteSize <= budgetBytes else { return }
        if let existing = entries[key], existing.generation > generation { return }
        entries[key] = Entry(index: index, generation: generation, lastUse: uses)
        var total = cachedBytes
        while total > budgetBytes, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            entries[oldest.key] = nil
            total -= oldest.value.index.byteSize
        }
    }
}
