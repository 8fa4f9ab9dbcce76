import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A stranger's flood: TCP connections to the coordinator that never send a byte, so they never
/// start a TLS handshake and never present a certificate.
///
/// The connections come from another loopback address than the real sites (127.0.0.2 by
/// default; all of 127.0.0.0/8 is local on Linux), as an attacker's would on a real network, so a
/// per-address connection cap can hold the flood back without also refusing the sites.
/// ``maintain()`` reopens every connection the coordinator closed: the flood stays at its size
/// for as long as it runs, as a persistent attacker's would.
final class SilentConnectionFlood {
    private let port: UInt16
    private let source: in_addr
    private var sockets: [Int32]
    /// Connections the coordinator closed (or refused) and the flood reopened.
    private(set) var closedByCoordinator = 0
    /// Connections that could not even be opened here (for example the local port range ran out).
    private(set) var openFailures = 0

    init(port: Int, source: String = "127.0.0.2", connections: Int) throws {
        var address = in_addr()
        guard inet_pton(AF_INET, source, &address) == 1 else {
            throw BenchmarkError("\(source) is not an IPv4 address")
        }
        self.port = UInt16(port)
        self.source = address
        sockets = Array(repeating: -1, count: connections)
        try SilentConnectionFlood.raiseFileLimit(toAtLeast: connections + 1024)
    }

    /// Opens the connections in batches of `batch`, `pause` apart: a burst larger than the
    /// coordinator's listen backlog would leave connections the client sees established (SYN
    /// cookies) but the server never accepted, and the flood would not reach the coordinator.
    func open(batch: Int = 50, pause: Duration = .milliseconds(100)) async throws {
        for start in stride(from: 0, to: sockets.count, by: batch) {
            for index in start..<min(start + batch, sockets.count) where sockets[index] < 0 {
                sockets[index] = open()
            }
            try await Task.sleep(for: pause)
        }
    }

    deinit { close() }

    /// How many of the flood's connections are open on this side now.
    var openConnections: Int { sockets.filter { $0 >= 0 }.count }

    /// Reopens the connections the coordinator closed since the last call, at most `limit` of
    /// them (the others at the next call, as in ``open(batch:pause:)``); returns how many.
    @discardableResult
    func maintain(limit: Int = 50) -> Int {
        var polled = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        _ = poll(&polled, nfds_t(polled.count), 0)
        var reopened = 0
        for (index, entry) in polled.enumerated() where reopened < limit {
            let closed = entry.fd < 0 || entry.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0
            guard closed else { continue }
            // The client never speaks first, so anything readable is the end of the stream.
            if entry.fd >= 0 {
                Glibc.close(entry.fd)
                closedByCoordinator += 1
            }
            sockets[index] = open()
            reopened += 1
        }
        return reopened
    }

    func close() {
        for socket in sockets where socket >= 0 { Glibc.close(socket) }
        sockets = sockets.map { _ in -1 }
    }

    /// A non-blocking socket bound to the flood's source address, connecting to the coordinator;
    /// -1 if it could not be opened.
    private func open() -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard socket >= 0 else {
            openFailures += 1
            return -1
        }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr = source
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = port.bigEndian
        remote.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, length) }
        }
        guard bound == 0, connected == 0 || errno == EINPROGRESS else {
            Glibc.close(socket)
            openFailures += 1
            return -1
        }
        return socket
    }

    /// Raises this process's soft RLIMIT_NOFILE to `minimum` (within the hard limit): the flood
    /// holds a descriptor per connection, more than a shell's usual 1024.
    static func raiseFileLimit(toAtLeast minimum: Int) throws {
        var limit = rlimit()
        guard getrlimit(fileLimitResource, &limit) == 0 else {
            throw BenchmarkError("cannot read this process's file-descriptor limit (errno \(errno))")
        }
        guard limit.rlim_cur < rlim_t(minimum) else { return }
        guard limit.rlim_max >= rlim_t(minimum) else {
            throw BenchmarkError(
                "the soak needs \(minimum) file descriptors; the hard limit is \(limit.rlim_max) (raise it with ulimit -Hn)"
            )
        }
        limit.rlim_cur = rlim_t(minimum)
        guard setrlimit(fileLimitResource, &limit) == 0 else {
            throw BenchmarkError("cannot raise this process's file-descriptor limit to \(minimum) (errno \(errno))")
        }
    }

    /// This process's soft RLIMIT_NOFILE.
    static var fileLimit: Int {
        var limit = rlimit()
        guard getrlimit(fileLimitResource, &limit) == 0 else { return -1 }
        return Int(clamping: limit.rlim_cur)
    }
}

#if canImport(Glibc)
/// Glibc's `__rlimit_resource_t` for RLIMIT_NOFILE.
private let fileLimitResource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#endif
