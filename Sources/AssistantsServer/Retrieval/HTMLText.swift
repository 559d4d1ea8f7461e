/// Text without markup, from HTML or Word XML: tags dropped, block ends as line breaks,
/// `script`/`style` bodies removed, the common entities decoded.
enum HTMLText {
    static let blockTags: Set<String> = ["p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "section",
                                         "article", "header", "footer", "ul", "ol", "pre", "blockquote", "title", "td", "th"]

    static func extract(_ html: String) -> String {
        strip(html, skipContentOf: ["script", "style", "noscript", "template", "head"], breakAfter: { blockTags.contains($0) }, keepTitle: true)
    }

    /// Word's XML: each `w:p` paragraph a line, `w:tab` a tab.
    static func extractWordXML(_ xml: String) -> String {
        strip(xml, skipContentOf: [], breakAfter: { $0 == "w:p" || $0 == "w:br" }, keepTitle: false, tab: "w:tab")
    }

    private static func strip(_ source: String, skipContentOf skipped: Set<String>, breakAfter: (String) -> Bool,
                              keepTitle: Bool, tab: String? = nil) -> String {
        var output = ""
        output.reserveCapacity(source.utf8.count / 2)
        var skipping: String?
        var index = source.startIndex
        var text = ""
        func flushText() {
            if skipping == nil { output += decodeEntities(text) }
            text = ""
        }
        while index < source.endIndex {
            let character = source[index]
            if character == "<", let close = source[index...].firstIndex(of: ">") {
                flushText()
                let inside = source[source.index(after: index)..<close]
                let isClosing = inside.hasPrefix("/")
                let name = inside.drop(while: { $0 == "/" || $0 == "!" }).prefix(while: { !$0.isWhitespace && $0 != "/" && $0 != ">" }).lowercased()
                if let current = skipping {
                    if isClosing && name == current { skipping = nil }
                } else if !isClosing && skipped.contains(name) && !inside.hasSuffix("/") {
                    if !(keepTitle && name == "head") { skipping = name } else { skipping = nil }
                } else if name == tab {
                    output += "\t"
                } else if breakAfter(name) && (isClosing || name == "br" || name == "w:br") {
                    output += "\n"
                }
                index = source.index(after: close)
                continue
            }
            text.append(character)
            index = source.index(after: index)
        }
        flushText()
        return collapse(output)
    }

    /// Runs of spaces become one space; more than two line breaks become two.
    static func collapse(_ text: String) -> String {
        var result = ""
        var spaces = 0
        var newlines = 0
        for character in text {
            if character == "\n" || character == "\r\n" {
                newlines += 1
                spaces = 0
            } else if character == " " || character == "\t" || character == "\r" || character == "\u{00A0}" {
                spaces += 1
            } else {
                if newlines > 0 {
                    result += String(repeating: "\n", count: min(newlines, 2))
                } else if spaces > 0 && !result.isEmpty {
                    result += " "
                }
                newlines = 0
                spaces = 0
                result.append(character)
            }
        }
        return result
    }

    static let entities: [String: String] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "#39": "'"]

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "&", let semicolon = text[index...].prefix(12).firstIndex(of: ";") {
                let name = String(text[text.index(after: index)..<semicolon])
                if let replacement = entities[name] {
                    result += replacement
                    index = text.index(after: semicolon)
                    continue
                }
                if name.hasPrefix("#") {
                    let digits = name.dropFirst()
                    let value = digits.hasPrefix("x") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
                    if let value, let scalar = Unicode.Scalar(value) {
                        result.unicodeScalars.append(scalar)
                        index = text.index(after: semicolon)
                        continue
                    }
                }
            }
            result.append(text[index])
            index = text.index(after: index)
        }
        return result
    }
}
