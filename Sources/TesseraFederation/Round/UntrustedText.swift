/// Text a site or a stranger wrote (failure reasons, dataset names, software versions), made
/// safe to put in a log line or a results file.
///
/// Control characters (newlines above all) are escaped, so a site cannot forge log lines,
/// and the text is cut at ``limit`` characters with the count of what was cut, so one message
/// cannot become a megabyte of log.
public enum UntrustedText {
    /// The longest piece of site-written text a log line carries.
    public static let limit = 160

    /// `text` with control characters escaped as `\n`, `\t` or `\u{…}`, cut at `limit`
    /// characters (the rest counted, not shown).
    public static func loggable(_ text: some StringProtocol, limit: Int = UntrustedText.limit) -> String {
        var out = ""
        var shown = 0
        var cut = 0
        for scalar in text.unicodeScalars {
            guard shown < limit else {
                cut += 1
                continue
            }
            shown += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default:
                if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                    || scalar.properties.generalCategory == .lineSeparator
                    || scalar.properties.generalCategory == .paragraphSeparator
                {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        if cut > 0 { out += "…(\(cut) more characters)" }
        return out
    }

    /// A list of site-written names for a log line: each made ``loggable(_:limit:)``, at most
    /// `count` of them, followed by how many were left out.
    public static func loggableList(_ names: some Sequence<String>, count: Int = 8) -> String {
        var shown: [String] = []
        var left = 0
        for name in names {
            if shown.count < count { shown.append(loggable(name, limit: 64)) } else { left += 1 }
        }
        return shown.joined(separator: ", ") + (left > 0 ? " and \(left) more" : "")
    }
}
