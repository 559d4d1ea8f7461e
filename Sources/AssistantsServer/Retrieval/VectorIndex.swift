import Foundation

/// One vector store's embeddings held in memory so a query scores them all in one pass: a
/// contiguous row-major Float32 matrix of unit-length rows (so a dot product is the cosine),
/// and the chunk `seq` of each row. Immutable once built; shared by concurrent searches.
final class VectorIndex: Sendable {
    let dimensions: Int
    let matrix: [Float]
    let seqs: [Int]
    /// The vector lengths found when there was more than one (the embedding model changed): the
    /// store cannot then be searched by vector, and the index holds no rows.
    let mixedDimensions: [Int]

    init(dimensions: Int, matrix: [Float], seqs: [Int], mixedDimensions: [Int] = []) {
        precondition(matrix.count == dimensions * seqs.count, "a vector index's matrix must hold one row per seq")
        self.dimensions = dimensions
        self.matrix = matrix
        self.seqs = seqs
        self.mixedDimensions = mixedDimensions
    }

    var count: Int { seqs.count }

    /// The memory the index holds.
    var byteSize: Int { matrix.count * MemoryLayout<Float>.size + seqs.count * MemoryLayout<Int>.size }

    /// Rows scored per offloaded piece of work, at least: below this, splitting costs more than it saves.
    static let rowsPerPart = 16_384

    /// The `k` rows nearest a unit-length query (by dot product), best first, as chunk seqs.
    /// Scored off the event loop, split over the cores when the matrix is large.
    func nearest(to query: [Float], k: Int) async throws -> [(seq: Int, score: Float)] {
        guard count > 0, k > 0, query.count == dimensions else { return [] }
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, count / Self.rowsPerPart))
        let bounds = (0...parts).map { count * $0 / parts }
        let best = try await withThrowingTaskGroup(of: [(row: Int, score: Float)].self) { group in
            for part in 0..<parts {
                let rows = bounds[part]..<bounds[part + 1]
                group.addTask { try await Offload.run { self.score(query, rows: rows, k: k).sorted() } }
            }
            var merged: [(row: Int, score: Float)] = []
            for try await partial in group { merged += partial }
            return merged
        }
        return best.sorted { $0.score > $1.score || ($0.score == $1.score && $0.row < $1.row) }.prefix(k).map { (seqs[$0.row], $0.score) }
    }

    /// The kernel: the top `k` of `rows` for `query`, with 16-wide SIMD dot products.
    func score(_ query: [Float], rows: Range<Int>, k: Int) -> VectorTopK {
        var top = VectorTopK(k: k)
        let dims = dimensions
        let blocks = dims / 16
        matrix.withUnsafeBytes { matrixBytes in
            query.withUnsafeBytes { queryBytes in
                for row in rows {
                    let base = row * dims * 4
                    var sum = SIMD16<Float>()
                    for block in 0..<blocks {
                        sum += matrixBytes.loadUnaligned(fromByteOffset: base + block * 64, as: SIMD16<Float>.self)
                            * queryBytes.loadUnaligned(fromByteOffset: block * 64, as: SIMD16<Float>.self)
                    }
                    var score = sum.sum()
                    for dim in (blocks * 16)..<dims {
                        score += matrixBytes.load(fromByteOffset: base + dim * 4, as: Float.self)
                            * queryBytes.load(fromByteOffset: dim * 4, as: Float.self)
                    }
                    top.offer(score: score, row: row)
                }
            }
        }
        return top
    }
}

/// Builds a `VectorIndex` from stored embeddings, page by page: each row decoded from its
/// packed bytes straight into the matrix and scaled to unit length. Used by one task at a time
/// (a load hands it from page to page), hence unchecked.
final class VectorIndexBuilder: @unchecked Sendable {
    private var matrix: [Float] = []
    private var seqs: [Int] = []
    private var dimensions: Int?
    private var lengths: Set<Int> = []
    private let expectedRows: Int

    /// `expectedRows` reserves the matrix at once (no doubling copies of a large store).
    init(expectedRows: Int) {
        self.expectedRows = expectedRows
    }

    func add(_ page: [(seq: Int, embedding: Data)]) {
        for (seq, embedding) in page {
            guard let length = VectorCodec.dimensions(of: embedding) else { continue }
            lengths.insert(length)
            guard lengths.count == 1 else {
                matrix = []
                seqs = []
                continue
            }
            if dimensions == nil {
                dimensions = length
                matrix.reserveCapacity(max(expectedRows, 1) * length)
                seqs.reserveCapacity(expectedRows)
            }
            let start = matrix.count
            matrix.append(contentsOf: repeatElement(0, count: length))
            matrix.withUnsafeMutableBufferPointer { all in
                let row = UnsafeMutableBufferPointer(rebasing: all[start..<(start + length)])
                VectorCodec.decode(embedding, into: row)
                var norm: Float = 0
                for value in row { norm += value * value }
                let scale = norm > 0 ? 1 / norm.squareRoot() : 0
                for index in row.indices { row[index] *= scale }
            }
            seqs.append(seq)
        }
    }

    func finish() -> VectorIndex {
        if lengths.count > 1 {
            return VectorIndex(dimensions: 0, matrix: [], seqs: [], mixedDimensions: lengths.sorted())
        }
        return VectorIndex(dimensions: dimensions ?? 0, matrix: matrix, seqs: seqs)
    }
}
