/// An uploaded file (`object: "file"`); its bytes live under the data dir.
public struct OpenAIFile: Codable, Sendable {
    public var id: String
    public var object = "file"
    public var bytes: Int
    public var created_at: Int
    @Nullable public var expires_at: Int?
    public var filename: String
    public var purpose: String
    public var status = "processed"
    @Nullable public var status_details: String?

    public init(id: String, bytes: Int, created_at: Int, filename: String, purpose: String) {
        self.id = id
        self.bytes = bytes
        self.created_at = created_at
        self.filename = filename
        self.purpose = purpose
    }
}

extension OpenAIFile {
    /// The client's filename is kept as metadata only; path separators and control characters are dropped.
    static func cleanFilename(_ name: String?) -> String {
        let base = (name ?? "upload").split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? "upload"
        let cleaned = String(base.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(255))
        return cleaned.isEmpty ? "upload" : cleaned
    }
}
