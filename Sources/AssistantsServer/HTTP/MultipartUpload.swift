import Foundation
import Hummingbird
import MultipartKit
import _NIOFileSystem

/// Streams a `multipart/form-data` upload: the `file` part goes straight to disk chunk by chunk,
/// never whole in memory; the small text fields are kept.
struct MultipartUpload {
    /// What the body held once it has been read.
    struct Result {
        var fields: [String: String]
        var filename: String?
        var byteCount: Int
        var sawFile: Bool
    }

    /// Parser state the MultipartKit callbacks write into.
    private final class State {
        var headers: [String: String] = [:]
        var isFile = false
        var fieldName: String?
        var fieldValue = ByteBuffer()
        var fileBytes = ByteBuffer()
        var result = Result(fields: [:], filename: nil, byteCount: 0, sawFile: false)
        var fileDone = false
    }

    static let maxFieldBytes = 64 * 1024

    /// Reads the request, writing the `file` part to `path`. Throws a 400 for a malformed body or one over `maxBytes`.
    static func read(_ request: Request, to path: String, maxBytes: Int) async throws -> Result {
        guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundary = boundary(of: contentType)
        else {
            throw APIError.invalidRequest("The request must be multipart/form-data with a 'file' and a 'purpose'.", param: "file")
        }
        let state = State()
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in state.headers[name.lowercased()] = value }
        parser.onBody = { buffer in
            if state.headers["content-disposition"] != nil && state.fieldName == nil {
                startPart(state)
            }
            if state.isFile {
                state.fileBytes.writeBuffer(&buffer)
            } else if state.fieldValue.readableBytes + buffer.readableBytes <= maxFieldBytes {
                state.fieldValue.writeBuffer(&buffer)
            }
        }
        parser.onPartComplete = {
            if state.fieldName == nil { startPart(state) }
            if state.isFile {
                state.fileDone = true
            } else if let name = state.fieldName {
                state.result.fields[name] = String(buffer: state.fieldValue)
            }
            state.headers = [:]
            state.fieldName = nil
            state.isFile = false
            state.fieldValue.clear()
        }

        try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(path), options: .newFile(replaceExisting: true)) { handle in
            var offset: Int64 = 0
            for try await chunk in request.body {
                do {
                    try parser.execute(chunk)
                } catch {
                    throw APIError.invalidRequest("The multipart body could not be parsed.", param: "file")
                }
                if state.fileBytes.readableBytes > 0 {
                    state.result.byteCount += state.fileBytes.readableBytes
                    if state.result.byteCount > maxBytes {
                        throw APIError.invalidRequest(
                            "File is too large: the maximum size is \(maxBytes / (1024 * 1024)) MB.", param: "file", code: "file_too_large")
                    }
                    try await handle.write(contentsOf: state.fileBytes, toAbsoluteOffset: offset)
                    offset += Int64(state.fileBytes.readableBytes)
                    state.fileBytes.clear()
                }
            }
            try await handle.synchronize()
        }
        return state.result
    }

    private static func startPart(_ state: State) {
        let disposition = state.headers["content-disposition"] ?? ""
        state.fieldName = parameter("name", in: disposition) ?? ""
        if let filename = parameter("filename", in: disposition), state.fieldName == "file" {
            state.isFile = !state.result.sawFile
            state.result.sawFile = true
            state.result.filename = filename
        } else if state.fieldName == "file" {
            state.isFile = !state.result.sawFile
            state.result.sawFile = true
        }
    }

    static func boundary(of contentType: String) -> String? {
        guard let value = parameter("boundary", in: contentType), !value.isEmpty else { return nil }
        return value
    }

    /// A `name=value` or `name="value"` parameter of a header value.
    static func parameter(_ name: String, in header: String) -> String? {
        for piece in header.split(separator: ";") {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            guard trimmed.lowercased().hasPrefix(name + "=") else { continue }
            var value = String(trimmed.dropFirst(name.count + 1))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
            }
            return value
        }
        return nil
    }
}
