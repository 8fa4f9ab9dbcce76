import Foundation
import NIOCore
import NIOPosix

/// A raw HTTP/1.1 client over loopback for the HTTP port's tests: it writes exactly the bytes a
/// test gives (so oversized headers and odd origins can be sent) and reads the answer as it
/// arrives (so an event stream can be read event by event).
final class LoopbackHTTPConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    /// Everything read so far.
    private(set) var received = ""
    /// Whether the server closed the connection.
    private(set) var closed = false

    private init(
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Connects to 127.0.0.1:`port` for the duration of `body`.
    static func with<Result>(
        port: Int, _ body: (LoopbackHTTPConnection) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(LoopbackHTTPConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// Sends a request with `Connection: close` and a `Content-Length` when it has a body.
    func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil
    ) async throws {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        try await send(text)
    }

    /// Reads until `condition` holds of everything received, or the server closes the connection;
    /// returns whether it holds.
    @discardableResult
    func read(until condition: (String) -> Bool) async throws -> Bool {
        while !condition(received) {
            guard let buffer = try await inbound.next() else {
                closed = true
                return condition(received)
            }
            received += String(buffer: buffer)
        }
        return true
    }

    /// Reads until the server closes the connection, and parses the response.
    func response() async throws -> LoopbackHTTPResponse {
        try await read(until: { _ in false })
        return try LoopbackHTTPResponse(parsing: received)
    }
}

struct LoopbackHTTPResponse {
    struct Malformed: Error {
        var text: String
    }

    var status: Int
    /// Header names in lower case.
    var headers: [String: String]
    var body: String

    init(parsing text: String) throws {
        guard let split = text.range(of: "\r\n\r\n") else { throw Malformed(text: text) }
        let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusLine = head.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Malformed(text: text) }
        self.status = status
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        self.headers = headers
        let rest = String(text[split.upperBound...])
        body = headers["transfer-encoding"] == "chunked" ? Self.dechunk(rest) : rest
    }

    /// The payload of a chunked body (as much of it as arrived).
    static func dechunk(_ text: String) -> String {
        var body = ""
        var rest = Substring(text)
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let bytes = Array(rest[start...].utf8)
            let chunk = bytes.prefix(size)
            body += String(decoding: chunk, as: UTF8.self)
            rest = Substring(String(decoding: bytes.dropFirst(min(bytes.count, size + 2)), as: UTF8.self))
        }
        return body
    }
}
