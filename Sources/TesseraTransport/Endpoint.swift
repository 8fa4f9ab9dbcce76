/// A host and port, parsed from `HOST:PORT` (IPv6 in brackets: `[::1]:7070`).
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(TesseraRuntimeError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw TesseraRuntimeError(
                .invalidConfiguration, "\"\(text)\" is not HOST:PORT (for example 127.0.0.1:7070).")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else {
            throw TesseraRuntimeError(.invalidConfiguration, "\"\(text)\" has no host (for example 127.0.0.1:7070).")
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is an IPv6 literal (it contains a colon).
    public var isIPv6Literal: Bool { host.contains(":") }

    /// Whether the host is a dotted IPv4 literal (otherwise it is resolved by DNS).
    public var isIPv4Literal: Bool {
        host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}
