import Foundation
import NIOCore
import _NIOFileSystem

/// The images of a thread as the model receives them: an `image_file` becomes a `data:` URL of
/// the stored bytes, its type read from the content (PNG, JPEG, GIF, WebP); on a route without
/// vision every image becomes a `[image: NAME]` placeholder instead.
struct PromptImages: Sendable {
    /// The largest image sent to a model (the API's own limit).
    static let maxBytes = 20 * 1024 * 1024

    /// What a prompt's image parts become, by file id: a data URL, or the placeholder's name.
    var dataURLs: [String: String] = [:]
    var names: [String: String] = [:]

    /// The image type of a file's first bytes, if it is one of the four the API takes.
    static func mimeType(of header: [UInt8]) -> String? {
        if header.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if header.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if header.starts(with: Array("GIF87a".utf8)) || header.starts(with: Array("GIF89a".utf8)) { return "image/gif" }
        if header.count >= 12, header.starts(with: Array("RIFF".utf8)), Array(header[8..<12]) == Array("WEBP".utf8) { return "image/webp" }
        return nil
    }

    /// Reads the stored file whole when it is at most `count` bytes; nil when missing or larger.
    static func read(_ fileID: String, in blobs: any BlobStore, upTo count: Int) async throws -> ByteBuffer? {
        guard let content = try await blobs.read(fileID: fileID), content.size <= count else { return nil }
        return try await content.prefix(bytes: count)
    }

    /// The image type of a stored file, nil when it is not an image or cannot be read.
    static func mimeType(ofFile fileID: String, in blobs: any BlobStore) async -> String? {
        guard let content = try? await blobs.read(fileID: fileID), let header = try? await content.prefix(bytes: 12) else { return nil }
        return mimeType(of: Array(header.readableBytesView))
    }

    /// Loads the images `messages` show, for a route with or without vision.
    static func load(for messages: [Message], files: [String: OpenAIFile], blobs: any BlobStore, vision: Bool) async -> PromptImages {
        var images = PromptImages()
        for message in messages {
            for part in message.content {
                guard let fileID = part["image_file"]?["file_id"]?.stringValue else { continue }
                images.names[fileID] = files[fileID]?.filename ?? fileID
                guard vision, images.dataURLs[fileID] == nil,
                      let bytes = try? await read(fileID, in: blobs, upTo: maxBytes), let type = mimeType(of: Array(bytes.readableBytesView.prefix(12)))
                else { continue }
                images.dataURLs[fileID] = "data:\(type);base64," + Data(bytes.readableBytesView).base64EncodedString()
            }
        }
        return images
    }

    /// Whether a message shows anything but text (an image part).
    static func showsImages(_ message: Message) -> Bool {
        message.content.contains { $0["type"]?.stringValue != "text" }
    }

    /// A message's `content` for the chat model: plain text when it shows no image, else parts in order.
    func content(of message: Message, vision: Bool) -> JSONValue {
        guard Self.showsImages(message) else { return .string(message.plainText) }
        var parts: [JSONValue] = []
        var text: [String] = []
        func flush() {
            if !text.isEmpty { parts.append(["type": "text", "text": .string(text.joined(separator: "\n"))]) }
            text = []
        }
        for part in message.content {
            switch part["type"]?.stringValue {
            case "text":
                text.append(part["text"]?["value"]?.stringValue ?? "")
            case "image_url":
                let url = part["image_url"]?["url"]?.stringValue ?? ""
                if vision {
                    flush()
                    parts.append(["type": "image_url", "image_url": ["url": .string(url), "detail": part["image_url"]?["detail"] ?? "auto"]])
                } else {
                    text.append("[image: \(url.hasPrefix("data:") ? "inline image" : url)]")
                }
            case "image_file":
                let fileID = part["image_file"]?["file_id"]?.stringValue ?? ""
                if vision, let url = dataURLs[fileID] {
                    flush()
                    parts.append(["type": "image_url", "image_url": ["url": .string(url), "detail": part["image_file"]?["detail"] ?? "auto"]])
                } else {
                    text.append("[image: \(names[fileID] ?? fileID)]")
                }
            default:
                continue
            }
        }
        flush()
        return vision ? .array(parts) : .string(parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n"))
    }
}
