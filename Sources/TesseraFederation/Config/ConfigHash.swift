import Foundation

extension ExperimentConfig {
    /// The configuration as canonical JSON: every value resolved (defaults written out, each
    /// strategy's effective hyperparameters), keys sorted, no whitespace. Two files that differ
    /// only in comments, key order, YAML style or spelling out a default give the same text.
    ///
    /// `output_directory`, `variants` and the base directory are left out: where results go and
    /// which other arms share the file do not change what this run computes.
    public var canonicalJSON: String {
        var copy = self
        copy.outputDirectory = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(copy) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A stable identifier of what this run computes: FNV-1a 64 of ``canonicalJSON``'s UTF-8
    /// bytes, as 16 lowercase hex digits.
    ///
    /// It goes into every model version's metadata and the results, so runs of the same
    /// configuration can be grouped. FNV-1a is not collision-resistant against an adversary;
    /// it identifies, it does not authenticate (model artifacts are addressed by SHA-256 for
    /// that). It is stable across machines and Swift versions because it hashes the canonical
    /// text, not Swift's per-process randomised `Hasher`.
    public var configHash: String {
        let digest = FNV1a64.hash(Array(canonicalJSON.utf8))
        let hex = String(digest, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// The 64-bit FNV-1a hash (Fowler, Noll and Vo): offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3; for each byte, xor then multiply.
enum FNV1a64 {
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }
}
