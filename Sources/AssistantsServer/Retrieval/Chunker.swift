/// Cuts text into overlapping chunks of about `max_chunk_size_tokens` tokens. A token here is a
/// word-like run of up to six characters or a punctuation mark, which never undercounts what a
/// BPE tokenizer would see by much. Offsets are UTF-8 byte offsets into the text.
struct Chunker {
    var maxTokens: Int
    var overlapTokens: Int

    init(strategy: ChunkingStrategy) {
        maxTokens = max(1, strategy.static.max_chunk_size_tokens)
        overlapTokens = min(max(0, strategy.static.chunk_overlap_tokens), maxTokens / 2)
    }

    struct Token {
        var start: Int
        var end: Int
        var weight: Int
    }

    static func tokens(_ bytes: [UInt8]) -> [Token] {
        var tokens: [Token] = []
        tokens.reserveCapacity(bytes.count / 4)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0x0C {
                index += 1
                continue
            }
            if isWordByte(byte) {
                let start = index
                while index < bytes.count && isWordByte(bytes[index]) { index += 1 }
                let characters = bytes[start..<index].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
                tokens.append(Token(start: start, end: index, weight: max(1, (characters + 5) / 6)))
            } else {
                tokens.append(Token(start: index, end: index + 1, weight: 1))
                index += 1
            }
        }
        return tokens
    }

    static func isWordByte(_ byte: UInt8) -> Bool {
        byte >= 0x80 || (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
    }

    func chunks(of text: String) -> [Chunk] {
        let bytes = Array(text.utf8)
        let tokens = Self.tokens(bytes)
        var chunks: [Chunk] = []
        var first = 0
        while first < tokens.count {
            var weight = 0
            var last = first
            while last < tokens.count && (weight + tokens[last].weight <= maxTokens || last == first) {
                weight += tokens[last].weight
                last += 1
            }
            let start = tokens[first].start
            let end = tokens[last - 1].end
            chunks.append(Chunk(index: chunks.count, startOffset: start, endOffset: end,
                                text: String(decoding: bytes[start..<end], as: UTF8.self)))
            if last >= tokens.count { break }
            // Step back over the overlap, but always move forward.
            var next = last
            var overlap = 0
            while next > first + 1 && overlap + tokens[next - 1].weight <= overlapTokens {
                overlap += tokens[next - 1].weight
                next -= 1
            }
            first = next
        }
        return chunks
    }
}
