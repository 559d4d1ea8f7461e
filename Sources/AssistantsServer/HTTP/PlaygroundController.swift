import Hummingbird
import HTTPTypes
import NIOCore

/// The playground page (issue 15): `GET /playground`, its files under `/playground/<name>`,
/// and `GET /` redirecting to it. Outside `/v1`, so loading the page needs no API key; the page
/// itself calls the public `/v1` API with the key the user types in (kept in the browser only).
struct PlaygroundController {
    /// Model names the form suggests, first the default.
    let modelNames: [String]
    /// Whether `/v1` needs an API key (the page then waits for one before calling it).
    var authRequired = true

    /// No inline script or style, nothing from another origin; images from the API come as blob: URLs.
    static let contentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
        + "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    init(modelNames: [String]) {
        self.modelNames = modelNames
    }

    init(configuration: ServerConfiguration) {
        var names: [String] = []
        let router = try? ModelRouter.load(
            path: configuration.modelsConfigPath, defaultURL: configuration.upstreamURL, defaultAPIKey: configuration.upstreamAPIKey)
        let configured = router?.isConfigured ?? (configuration.upstreamURL != nil)
        if configuration.localModel ?? !configured, LocalModelService.installed() != nil {
            names.append("smollm2")
        }
        for route in router?.routes ?? [] {
            if let name = route.name, !names.contains(name) { names.append(name) }
        }
        if configuration.upstreamURL != nil {
            for name in ["gpt-4o-mini", "gpt-4o"] where !names.contains(name) { names.append(name) }
        }
        if names.isEmpty { names.append("gpt-4o-mini") }
        self.modelNames = names
        self.authRequired = !configuration.apiKeys.isOpen
    }

    func addRoutes(to router: Router<APIRequestContext>) {
        router.get("/") { _, _ in
            Response(status: .found, headers: [.location: "/playground", .contentLength: "0"])
        }
        router.get("playground") { _, _ in Self.asset("index.html") }
        router.get("playground/config.json") { _, _ in
            let body = "{\"models\":[" + modelNames.map { "\"" + Self.jsonEscaped($0) + "\"" }.joined(separator: ",")
                + "],\"auth_required\":\(authRequired)}"
            return Self.response(contentType: "application/json", body: body)
        }
        router.get("playground/:asset") { _, context in
            Self.asset(context.parameters.get("asset") ?? "")
        }
    }

    static func asset(_ name: String) -> Response {
        guard let asset = PlaygroundAssets.files[name] else {
            return response(status: .notFound, contentType: "text/plain; charset=utf-8", body: "not found\n")
        }
        return response(contentType: asset.contentType, body: asset.text + "\n")
    }

    static func response(status: HTTPResponse.Status = .ok, contentType: String, body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[HTTPField.Name("Content-Security-Policy")!] = contentSecurityPolicy
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func jsonEscaped(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
