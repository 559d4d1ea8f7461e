/// What a new message may name: files of the caller's project, and images the model can see.
extension Message {
    /// Every file a message names (attachments, image_file parts) must exist in the caller's project;
    /// an image_file must be a PNG, JPEG, GIF or WebP of at most 20 MB (read from its bytes).
    func checkFiles(session: StoreSession, blobs: any BlobStore) async throws {
        for (index, attachment) in (attachments ?? []).enumerated() {
            if let fileID = attachment["file_id"]?.stringValue, try await !session.exists(.file, id: fileID) {
                throw DomainError.invalidRequest("No file found with id '\(fileID)'.", param: "attachments[\(index)].file_id")
            }
        }
        for (index, part) in content.enumerated() {
            guard let fileID = part["image_file"]?["file_id"]?.stringValue else { continue }
            let param = "content[\(index)].image_file.file_id"
            guard let file = try await session.get(OpenAIFile.self, id: fileID) else {
                throw DomainError.invalidRequest("No file found with id '\(fileID)'.", param: param)
            }
            if file.bytes > PromptImages.maxBytes {
                throw DomainError.invalidRequest(
                    "The image '\(fileID)' is \(file.bytes) bytes; images may be at most \(PromptImages.maxBytes / (1024 * 1024)) MB.", param: param)
            }
            guard await PromptImages.mimeType(ofFile: fileID, in: blobs) != nil else {
                throw DomainError.invalidRequest(
                    "The file '\(fileID)' is not an image: image_file takes PNG, JPEG, GIF or WebP files.", param: param, code: "invalid_image")
            }
        }
    }
}
