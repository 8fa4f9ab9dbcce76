import TesseraCrypto
import TesseraSupport
import TesseraTensor

/// One round's public randomness: 32 bytes from which the cohort draw, the SecAgg+ graph
/// permutation, the SecAgg round ids and the evaluators' draw are derived, each under its own
/// label so that none predicts another.
///
/// A deployed coordinator draws it from the operating system's CSPRNG each round
/// (``FederationPlan/PublicRandomness/system``), so colluding sites cannot work out in advance
/// where they will sit around a victim; a simulation derives it from the experiment seed. The
/// round record keeps it either way (``RoundRecord/publicSeed``). The graph seed is committed
/// to with the roster and revealed only after AdvertiseKeys (``SecAggConfiguration/graphSeedCommitment``).
struct RoundRandomness: Sendable {
    let seed: [UInt8]

    /// - Parameter attempt: 0 for a round's first run; a round run again after a restart uses a
    ///   later attempt, which draws randomness unrelated to the abandoned one's.
    init(plan: FederationPlan, round: Int, attempt: Int = 0) {
        switch plan.publicRandomness {
        case .fromSeed:
            var hasher = SHA256()
            hasher.update(Array("tessera public randomness".utf8))
            withUnsafeBytes(of: plan.seed.littleEndian) { hasher.update($0) }
            withUnsafeBytes(of: UInt64(round).littleEndian) { hasher.update($0) }
            if attempt > 0 { withUnsafeBytes(of: UInt64(attempt).littleEndian) { hasher.update($0) } }
            seed = hasher.finalize()
        case .system:
            var generator = SecureRandomGenerator()
            seed = (0..<4).flatMap { _ in withUnsafeBytes(of: generator.next().littleEndian) { Array($0) } }
        }
    }

    /// 32 bytes for `label`.
    func bytes(_ label: String) -> [UInt8] {
        SHA256.hash(Array(label.utf8) + [0] + seed)
    }

    /// A 64-bit word for `label`, never zero.
    func word(_ label: String) -> UInt64 {
        let value = bytes(label).prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
        return max(value, 1)
    }

    /// A generator for draws made under `label`.
    func generator(_ label: String) -> TesseraRandom { TesseraRandom(seed: word(label)) }

    var hex: String { Hex.encode(seed) }
}
