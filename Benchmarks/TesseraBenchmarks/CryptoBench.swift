import Foundation
import TesseraCrypto

/// The crypto benchmark of `tessera bench`: the mask PRG, which is the physical floor of secure
/// aggregation (DESIGN.md, "Cost model"), the per-pair cost of key agreement, and the signatures
/// of the active setting.
///
/// Every figure is single-threaded and the best of several runs, because the benchmark shares
/// its machine. The mask PRG is reported twice so the two can be compared in the same run:
/// `fill` is the raw OpenSSL AES-128-CTR keystream written to memory, and `add` is the fused
/// expand-and-accumulate that participants and the coordinator actually run. Their ratio says
/// how much the accumulation costs on top of the cipher.
public enum CryptoBenchmark {
    /// ~400 KB of UInt32 coordinates: a 100k-parameter model update, which fits in L2 like the
    /// running sum of a small model does.
    static let accumulatorWords = 100_000
    /// Passes over the accumulator per timed run (about 20 MB of keystream).
    static let passes = 50
    /// Timed runs; the best one is reported.
    static let repeats = 7

    /// Throughput, in GB/s of mask bytes, of `MaskPRG.add(into:)` over a ~400 KB accumulator,
    /// single-core, best of several runs. Also reports the raw keystream (`fill`) throughput,
    /// the ratio of the two, and an 8-seed `MaskPRG.add(seeds:signs:into:)` pass.
    public static func measureAESCTR(reporter: BenchReporter) throws -> Double {
        let prg = try MaskPRG(seed: SecureRandom.secret(MaskPRG.seedByteCount))
        var accumulator = [UInt32](repeating: 1, count: accumulatorWords)
        var output = [UInt32](repeating: 0, count: accumulatorWords)
        let bytesPerRun = Double(accumulatorWords * 4 * passes)

        // Warm up: page in the buffers and let OpenSSL pick its AES-NI code path.
        try accumulator.withUnsafeMutableBufferPointer { try prg.add(into: $0) }
        try output.withUnsafeMutableBufferPointer { try prg.fill($0) }

        let fillSeconds = try BenchClock.best(repeats: repeats) {
            try output.withUnsafeMutableBufferPointer { buffer in
                for _ in 0..<passes { try prg.fill(buffer) }
            }
        }
        let addSeconds = try BenchClock.best(repeats: repeats) {
            try accumulator.withUnsafeMutableBufferPointer { buffer in
                for _ in 0..<passes { try prg.add(into: buffer) }
            }
        }
        let seeds = (0..<8).map { _ in SecureRandom.secret(MaskPRG.seedByteCount) }
        let signs: [MaskPRG.Sign] = [.plus, .minus, .plus, .minus, .plus, .minus, .plus, .minus]
        let multiPasses = max(1, passes / seeds.count)
        let multiSeconds = try BenchClock.best(repeats: repeats) {
            try accumulator.withUnsafeMutableBufferPointer { buffer in
                for _ in 0..<multiPasses { try MaskPRG.add(seeds: seeds, signs: signs, into: buffer) }
            }
        }

        let fill = bytesPerRun / fillSeconds / 1e9
        let add = bytesPerRun / addSeconds / 1e9
        let multi = Double(accumulatorWords * 4 * seeds.count * multiPasses) / multiSeconds / 1e9
        reporter.note(
            "AES-128-CTR via OpenSSL EVP, \(accumulatorWords) UInt32 words (~\(accumulatorWords * 4 / 1000) KB), single-core, best of \(repeats)"
        )
        reporter.figure("aes_ctr_fill_gbytes_per_s", fill, unit: "GB/s", label: "raw keystream (MaskPRG.fill)")
        reporter.figure("aes_ctr_gbytes_per_s", add, unit: "GB/s", label: "fused expand + add (MaskPRG.add)")
        reporter.figure("aes_ctr_add_vs_fill", add / fill, unit: "", label: "fused add / raw keystream (target ≥ 0.85)")
        reporter.figure(
            "aes_ctr_multi_seed_gbytes_per_s", multi, unit: "GB/s", label: "8 seeds in one pass (MaskPRG.add(seeds:))")
        return add
    }

    /// X25519 key agreements (scalar multiplications with a peer's key) per second, single-core.
    public static func measureX25519(reporter: BenchReporter) throws -> Double {
        let ours = X25519PrivateKey()
        let peers = (0..<16).map { _ in X25519PrivateKey().publicKey }
        let agreements = 1_000
        _ = try ours.sharedSecret(with: peers[0])
        let seconds = try BenchClock.best(repeats: 3) {
            for index in 0..<agreements {
                _ = try ours.sharedSecret(with: peers[index & 15])
            }
        }
        let rate = Double(agreements) / seconds
        reporter.figure("x25519_ops_per_s", rate, unit: "ops/s", label: "X25519 shared secrets (libsodium)")
        return rate
    }

    /// Ed25519 signatures and verifications per second (libsodium), single-core: what the active
    /// setting adds to a SecAgg participant's round.
    public static func measureEd25519(reporter: BenchReporter) throws -> (sign: Double, verify: Double) {
        let key = Ed25519PrivateKey()
        let messages = (0..<16).map { Array("tessera-bench-ed25519-\($0)".utf8) }
        let signatures = messages.map { key.signature(for: $0) }
        let operations = 1_000
        var valid = 0
        let signSeconds = BenchClock.best(repeats: 3) {
            for index in 0..<operations { valid &+= key.signature(for: messages[index & 15]).count }
        }
        let verifySeconds = BenchClock.best(repeats: 3) {
            for index in 0..<operations {
                if key.publicKey.isValidSignature(signatures[index & 15], for: messages[index & 15]) { valid &+= 1 }
            }
        }
        guard valid > 0 else { throw BenchmarkError("Ed25519: no signature verified") }
        let sign = Double(operations) / signSeconds
        let verify = Double(operations) / verifySeconds
        reporter.figure("ed25519_sign_per_s", sign, unit: "ops/s", label: "Ed25519 signatures (libsodium)")
        reporter.figure("ed25519_verify_per_s", verify, unit: "ops/s", label: "Ed25519 verifications (libsodium)")
        return (sign, verify)
    }

    /// Time to Shamir-split a 32-byte secret to 1000 points with threshold 500 and combine it.
    static func measureShamir(reporter: BenchReporter) throws {
        let secret = SecureRandom.bytes(32)
        let points = (1...1000).map { UInt32($0) }
        var shares: [ShamirShare] = []
        let split = try BenchClock.best(repeats: 3) {
            shares = try Shamir.split(secret: secret, threshold: 500, points: points)
        }
        let combine = try BenchClock.best(repeats: 3) {
            _ = try Shamir.combine(Array(shares.prefix(500)), threshold: 500, secretLength: 32)
        }
        reporter.figure(
            "shamir_split_1000_500_ms", split * 1000, unit: "ms", label: "Shamir split, 32 bytes, n = 1000, t = 500")
        reporter.figure("shamir_combine_500_ms", combine * 1000, unit: "ms", label: "Shamir combine, 500 shares")
    }

    /// All crypto figures.
    public static func run(reporter: BenchReporter) throws {
        reporter.section("Crypto (mask PRG, key agreement, secret sharing)")
        _ = try measureAESCTR(reporter: reporter)
        _ = try measureX25519(reporter: reporter)
        _ = try measureEd25519(reporter: reporter)
        try measureShamir(reporter: reporter)
    }
}
