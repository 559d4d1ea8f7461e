import Foundation
import Hummingbird
import _NIOFileSystem

/// Streams a `multipart/form-data` upload: the `file` part goes straight to disk chunk by chunk,
/// never whole in memory; the small text fields are kept. Every malformed body (bad headers, a
/// second `file` part, a body cut short or without its closing boundary) is a 400, and then
/// nothing of it is kept.
struct MultipartUpload {
    /// What the body held once it has been read.
    struct Result {
        var fields: [String: String] = [:]
        var filename: String?
        var byteCount = 0
        var sawFile = false
    }

    static let maxFieldBytes = 64 * 1024

    /// Reads the request, writing the `file` part to `path`. Throws a 400 for a malformed body or one over `maxBytes`.
    static func read(_ request: Request, to path: String, maxBytes: Int) async throws -> Result {
        var parser = try parser(for: request.headers[.contentType])
        var result = Result()
        /// The part being read: nil between parts, `file` for the file, else a field's name and bytes.
        var field: (name: String, bytes: ByteBuffer)?
        var inFile = false

        try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(path), options: .newFile(replaceExisting: true)) { handle in
            var offset: Int64 = 0
            var iterator = request.body.makeAsyncIterator()
            while true {
                let chunk: ByteBuffer?
                do {
                    chunk = try await iterator.next()
                } catch {
                    throw APIError.invalidRequest("The request body ended before it was complete.", param: "file")
                }
                guard let chunk else { break }
                var fileBytes = ByteBuffer()
                for event in try events(&parser, chunk) {
                    switch event {
                    case .part(let headers):
                        let disposition = try Self.disposition(headers)
                        let name = disposition["name"] ?? ""
                        if name == "file" {
                            guard !result.sawFile else {
                                throw APIError.invalidRequest("The request has more than one 'file' part.", param: "file")
                            }
                            result.sawFile = true
                            result.filename = try disposition["filename"].map { try Self.checkedFilename($0) }
                            inFile = true
                        } else {
                            field = (name, ByteBuffer())
                        }
                    case .body(var bytes):
                        if inFile {
                            fileBytes.writeBuffer(&bytes)
                        } else if field != nil {
                            guard (field?.bytes.readableBytes ?? 0) + bytes.readableBytes <= maxFieldBytes else {
                                throw APIError.invalidRequest(
                                    "The form field '\(field?.name ?? "")' is larger than \(maxFieldBytes / 1024) KB.", param: field?.name)
                            }
                            field?.bytes.writeBuffer(&bytes)
                        }
                    case .partEnd:
                        if let field {
                            result.fields[field.name] = String(buffer: field.bytes)
                        }
                        field = nil
                        inFile = false
                    }
                }
                guard fileBytes.readableBytes > 0 else { continue }
                result.byteCount += fileBytes.readableBytes
                if result.byteCount > maxBytes {
                    throw APIError.invalidRequest(
                        "File is too large: the maximum size is \(maxBytes / (1024 * 1024)) MB.", param: "file", code: "file_too_large")
                }
                try await handle.write(contentsOf: fileBytes, toAbsoluteOffset: offset)
                offset += Int64(fileBytes.readableBytes)
            }
            do {
                try parser.finish()
            } catch {
                throw APIError.invalidRequest("The multipart body could not be parsed: \(error)", param: "file")
            }
            try await handle.synchronize()
        }
        return result
    }

    /// A parser for the request's `Content-Type`, which must be `multipart/form-data` with a boundary.
    static func parser(for contentType: String?) throws -> MultipartFormParser {
        let invalid = APIError.invalidRequest("The request must be multipart/form-data with a 'file' and a 'purpose'.", param: "file")
        guard let contentType, let parameters = try? HeaderParameters(parsing: contentType),
              parameters.type == "multipart/form-data", let boundary = parameters["boundary"]
        else { throw invalid }
        do {
            return try MultipartFormParser(boundary: boundary)
        } catch {
            throw APIError.invalidRequest("\(error)", param: "file")
        }
    }

    private static func events(_ parser: inout MultipartFormParser, _ chunk: ByteBuffer) throws -> [MultipartFormParser.Event] {
        do {
            return try parser.feed(chunk)
        } catch {
            throw APIError.invalidRequest("The multipart body could not be parsed: \(error)", param: "file")
        }
    }

    /// A part's `Content-Disposition`, which RFC 7578 requires to be `form-data` with a name.
    static func disposition(_ headers: [(name: String, value: String)]) throws -> HeaderParameters {
        guard let value = headers.first(where: { $0.name == "content-disposition" })?.value else {
            throw APIError.invalidRequest("A multipart part has no Content-Disposition header.", param: "file")
        }
        let parameters: HeaderParameters
        do {
            parameters = try HeaderParameters(parsing: value)
        } catch {
            throw APIError.invalidRequest("A multipart Content-Disposition could not be parsed: \(error).", param: "file")
        }
        guard parameters.type == "form-data", parameters["name"] != nil else {
            throw APIError.invalidRequest("A multipart part must be 'form-data' with a name.", param: "file")
        }
        return parameters
    }

    /// A filename as sent, refused when it holds control characters.
    static func checkedFilename(_ name: String) throws -> String {
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError.invalidRequest("The filename holds control characters.", param: "file")
        }
        return name
    }
}
