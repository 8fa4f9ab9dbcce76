import TesseraCrypto
import TesseraSupport

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
        let length = hex.utf8.count
        guard length == 2 * SHA256.byteCount else {
            throw WireError.outOfRange(
                field, "a SHA-256 digest is \(2 * SHA256.byteCount) hex digits, got \(length) characters.")
        }
        guard let bytes = Hex.decode(hex) else {
            throw WireError.outOfRange(field, "\"\(hex)\" is not hexadecimal.")
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
    public var hex: String { Hex.encode(bytes) }

    public var description: String { hex }
}
