/// The `k` best-scoring rows seen so far, kept in a bounded min-heap (the worst kept row at the
/// root), so choosing the top `k` of `n` rows costs `n log k` and `k` entries of memory.
/// Equal scores prefer the lower row, so results do not depend on how the rows were split.
struct VectorTopK {
    let k: Int
    private(set) var scores: [Float] = []
    private(set) var rows: [Int] = []

    init(k: Int) {
        self.k = max(0, k)
        scores.reserveCapacity(self.k)
        rows.reserveCapacity(self.k)
    }

    /// Whether entry `a` ranks below entry `b`.
    @inline(__always)
    private func worse(_ a: Int, _ b: Int) -> Bool {
        scores[a] < scores[b] || (scores[a] == scores[b] && rows[a] > rows[b])
    }

    @inline(__always)
    mutating func offer(score: Float, row: Int) {
        if scores.count < k {
            scores.append(score)
            rows.append(row)
            var child = scores.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard worse(child, parent) else { break }
                scores.swapAt(child, parent)
                rows.swapAt(child, parent)
                child = parent
            }
        } else if k > 0, score > scores[0] || (score == scores[0] && row < rows[0]) {
            scores[0] = score
            rows[0] = row
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < scores.count, worse(left, smallest) { smallest = left }
                if right < scores.count, worse(right, smallest) { smallest = right }
                if smallest == parent { break }
                scores.swapAt(parent, smallest)
                rows.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// The kept rows, best first.
    func sorted() -> [(row: Int, score: Float)] {
        zip(rows, scores).map { (row: $0, score: $1) }.sorted { $0.score > $1.score || ($0.score == $1.score && $0.row < $1.row) }
    }
}
