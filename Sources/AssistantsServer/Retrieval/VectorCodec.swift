import Foundation

/// How an embedding is stored in `chunks.embedding`: packed little-endian Float32, 4 bytes a
/// dimension, no header; the same bytes on SQLite (BLOB) and PostgreSQL (BYTEA), on any CPU.
enum VectorCodec {
    static func encode(_ vector: [Float]) -> Data {
        var data = Data(count: vector.count * 4)
        data.withUnsafeMutableBytes { bytes in
            for (index, value) in vector.enumerated() {
                bytes.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            }
        }
        return data
    }

    /// The dimensions a stored embedding has, nil when its length is not a whole number of floats.
    static func dimensions(of data: Data) -> Int? {
        data.isEmpty || data.count % 4 != 0 ? nil : data.count / 4
    }

    /// Writes the embedding's floats to `destination`, which has room for `dimensions(of: data)`.
    static func decode(_ data: Data, into destination: UnsafeMutableBufferPointer<Float>) {
        data.withUnsafeBytes { bytes in
            for index in 0..<min(destination.count, bytes.count / 4) {
                let bits = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
                destination[index] = Float(bitPattern: bits)
            }
        }
    }

    static func decode(_ data: Data) -> [Float] {
        [Float](unsafeUninitializedCapacity: data.count / 4) { buffer, count in
            decode(data, into: buffer)
            count = data.count / 4
        }
    }
}
