public import Foundation
public import SwiftProtobuf

extension SwiftProtobuf.Message {
    /// Parses bytes that came from the network, reporting anything that is not an encoding of
    /// this message (random bytes, a truncated buffer, a wrong wire type) as
    /// ``WireError/Code-swift.struct/malformedBytes`` naming the message, instead of the
    /// library's own error type.
    ///
    /// gRPC does this parsing itself for service methods; this is for every other place bytes
    /// arrive: stored envelopes, tests, tools, other transports.
    public init(wireBytes bytes: Data) throws(WireError) {
        do {
            try self.init(serializedBytes: bytes)
        } catch {
            throw WireError(
                code: .malformedBytes,
                message: "\(bytes.count) bytes are not a valid \(Self.protoMessageName): \(error)",
                field: Self.protoMessageName, cause: error)
        }
    }

    /// The protobuf binary encoding. Serializing an in-memory message cannot fail (it has no
    /// required fields, which is the only failure the library reports for binary output).
    public func wireBytes() -> Data {
        do {
            return try serializedData()
        } catch {
            preconditionFailure("serializing \(Self.protoMessageName) failed: \(error)")
        }
    }
}
