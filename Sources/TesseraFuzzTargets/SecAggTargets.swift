import Foundation
import SwiftProtobuf
import TesseraCrypto
import TesseraSecAgg
import TesseraSupport
import TesseraWire

/// The SecAgg binary encoding and Shamir shares, as the coordinator and the participants
/// read them from each other.
enum SecAggTargets {
    /// Input: the bytes of one SecAgg message. What decodes must encode back to the same bytes
    /// (the format has one encoding per message), and must survive the protobuf payload that
    /// carries it.
    static func secAggMessage(_ bytes: [UInt8]) -> Int {
        guard let message = try? SecAggMessage.decode(bytes) else { return 0 }
        fuzzExpect(message.encoded() == bytes, "a decoded SecAgg message does not encode back to its bytes")
        fuzzExpect(
            message.isFromClient
                ? message.sender != 0 && message.recipient == 0
                : message.sender == 0
                    && message.recipient != 0,
            "a SecAgg message's sender and recipient contradict its direction")
        let payload = Tessera_V1_SecAggPayload(message)
        let carried: [UInt8]? = try? payload.serializedBytes()
        let unwrapped = carried.flatMap { try? Tessera_V1_SecAggPayload(serializedBytes: $0) }
        guard case .message(let inner)? = unwrapped?.body else {
            fuzzExpect(false, "a SecAgg message does not survive its protobuf payload")
            return 1
        }
        fuzzExpect([UInt8](inner) == bytes, "a SecAgg payload changed the message's bytes")
        return 1
    }

    /// Input: a threshold byte, a secret-length byte, then framed serialized shares.
    ///
    /// Every share that decodes encodes back to its bytes. With exactly `threshold` shares,
    /// `Shamir.combine` (the client's reconstruction) and `ShamirReconstructor` (the server's,
    /// with cached coefficients) must agree on every input, valid or not. A secret split by
    /// `Shamir.split` comes back from any `threshold` of its shares.
    static func shamirShares(_ bytes: [UInt8]) -> Int {
        var input = FuzzInput(bytes)
        let threshold = Int(input.byte() % 8) + 1
        let secretLength = Int(input.byte() % 64)
        var shares: [ShamirShare] = []
        while !input.isAtEnd {
            let piece = input.piece()
            guard let share = try? ShamirShare(serialized: piece) else { continue }
            fuzzExpect(share.serialized() == piece, "a decoded Shamir share does not encode back to its bytes")
            fuzzExpect(share.x != 0 && share.values.allSatisfy { $0 < Shamir.prime }, "a share outside the field")
            shares.append(share)
        }
        if shares.count >= threshold {
            let used = Array(shares.prefix(threshold))
            let combined = try? Shamir.combine(used, threshold: threshold, secretLength: secretLength)
            var reconstructor = ShamirReconstructor()
            let reconstructed = reconstructor.reconstruct(used, threshold: threshold, secretLength: secretLength)
            fuzzExpect(combined == reconstructed, "Shamir.combine and ShamirReconstructor disagree")
            if let combined { fuzzExpect(combined.count == secretLength, "a reconstructed secret of the wrong length") }
        }
        // Split and reconstruct a secret taken from the input, at the points the shares named.
        let points = Array(Set(shares.map(\.x))).sorted()
        guard points.count >= threshold else { return shares.count }
        let secret = Array(bytes.prefix(secretLength))
        var generator = Xoshiro256StarStar(seed: UInt64(bytes.count))
        guard let split = try? Shamir.split(secret: secret, threshold: threshold, points: points, using: &generator)
        else {
            fuzzExpect(false, "Shamir.split refused distinct non-zero points")
            return shares.count
        }
        let back = try? Shamir.combine(Array(split.suffix(threshold)), threshold: threshold, secretLength: secret.count)
        fuzzExpect(back == secret, "a split secret does not come back from \(threshold) of its shares")
        return shares.count
    }
}
