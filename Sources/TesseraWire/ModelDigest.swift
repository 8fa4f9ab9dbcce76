import TesseraCrypto

/// The SHA-256 digest that names a model's parameters on the wire and in the model store.
///
/// It is computed over the wire encoding of the parameters (little-endian float32, in flat
/// parameter order), so the receiver can verify chunk by chunk what it was sent against what it
/// asked for, without re-encoding anything. Shown and transmitted as 64 lowercase hex digits.
public struct ModelDigest: Sendable, Hashable, CustomStringConvertible {
    /// The 32 digest bytes.
    public let bytes: [UInt8]

    /// Wraps 32 digest bytes (`nil` for any other length).
    public init?(bytes: [UInt8]) {
        guard bytes.count == SHA256.byteCount else { return nil }
        self.bytes = bytes
    }

    /// Parses 64 hexadecimal digits (either case). `field` names the protobuf field in the
    /// error, because a digest always arrives in one.
    public init(hex: String, field: String = "tessera.v1.FetchModelRequest.digest") throws(WireError) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 2 * SHA256.byteCount else {
            throw WireError.outOfRange(
                field, "a SHA-256 digest is \(2 * SHA256.byteCount) hex digits, got \(utf8.count) characters.")
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(SHA256.byteCount)
        var i = 0
        while i < utf8.count {
            guard let high = nibble(utf8[i]), let low = nibble(utf8[i + 1]) else {
                throw WireError.outOfRange(field, "\"\(hex)\" is not hexadecimal.")
            }
            bytes.append(high << 4 | low)
            i += 2
        }
        self.bytes = bytes
    }

    /// The digest of `parameters`' wire encoding, hashed in place (no encoded copy is made on
    /// little-endian hosts).
    public init(parameters: [Float]) {
        var hasher = SHA256()
        #if _endian(little)
            parameters.withUnsafeBytes { hasher.update($0) }
        #else
            var block = [UInt32]()
            block.reserveCapacity(4096)
            for start in stride(from: 0, to: parameters.count, by: 4096) {
                block.removeAll(keepingCapacity: true)
                for value in parameters[start..<min(start + 4096, parameters.count)] {
                    block.append(value.bitPattern.littleEndian)
                }
                block.withUnsafeBytes { hasher.update($0) }
            }
        #endif
        self.bytes = hasher.finalize()
    }

    /// 64 lowercase hex digits, as `sha256sum` prints them.
    public var hex: String { SHA256.hex(bytes) }

    public var description: String { hex }
}
