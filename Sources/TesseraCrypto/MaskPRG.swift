import CSodium

/// The pseudorandom generator that expands a 32-byte seed into a mask vector over `Z_(2^32)`.
///
/// Secure aggregation hides each input `x` as `x + PRG(selfSeed) ± Σ PRG(pairwiseKey)`; the
/// coordinator later removes the masks of survivors and of dropped participants. Every
/// coordinate of the model passes through this PRG once per mask, so it is the throughput floor
/// of the whole system (see DESIGN.md, "Cost model").
///
/// Construction (stable; changing it breaks interoperability between versions):
///
///     key     = seed[0 ..< 16]          AES-128 key
///     counter = seed[16 ..< 32]         initial 128-bit counter block, big-endian increment
///     stream  = AES-128-CTR(key, counter) applied to zero bytes (i.e. the raw keystream)
///     word[i] = UInt32(littleEndian: stream[4i ..< 4i+4])
///
/// Splitting the seed is sound because the seed is uniformly random (a fresh random self-mask
/// seed, or a ``KeyDerivation`` output): key and counter are independent and uniform. It is the
/// AES-CTR PRG of Bonawitz et al. 2017 and Google's implementation, run on AES-NI via OpenSSL.
///
/// Every call is a pure function of the seed: it starts from word 0 (or the given word offset),
/// so the participant that adds a mask and the coordinator that removes it agree exactly.
///
/// ``add(into:)`` and ``subtract(from:)`` are fused: the keystream is produced into a reused
/// 16 KiB block that stays in L1 cache and is added into the accumulator block by block, so a
/// full mask vector is never materialised and memory traffic is one read and one write of the
/// accumulator.
public struct MaskPRG: Sendable {
    /// Seed size in bytes.
    public static let seedByteCount = 32

    /// Words produced per keystream block (16 KiB): small enough to stay in L1 next to the
    /// accumulator block, large enough that the per-call cost of `EVP_EncryptUpdate` vanishes.
    static let chunkWords = 4096

    private let seed: SecretBytes

    /// A PRG for `seed`, which must be 32 bytes.
    public init(seed: SecretBytes) throws {
        guard seed.count == Self.seedByteCount else {
            throw CryptoError(
                code: .invalidLength,
                message: "A mask PRG seed is \(Self.seedByteCount) bytes, but \(seed.count) bytes were given."
            )
        }
        self.seed = seed
    }

    /// Writes the mask words `offset ..< offset + out.count` into `out`.
    public func fill(_ out: UnsafeMutableBufferPointer<UInt32>, startingAt offset: Int = 0) throws {
        guard let base = out.baseAddress, out.count > 0 else { return }
        let stream = try makeStream(startingAt: offset)
        let scratch = Scratch(words: min(Self.chunkWords, out.count))
        defer { scratch.release() }
        var done = 0
        while done < out.count {
            let n = min(Self.chunkWords, out.count - done)
            try stream.encrypt(scratch.zeros, into: base + done, count: n * 4)
            done += n
        }
        #if _endian(big)
        for i in 0..<out.count { base[i] = UInt32(littleEndian: base[i]) }
        #endif
    }

    /// `accumulator[i] &+= mask[offset + i]` for every `i`: adds this mask, modulo 2^32.
    public func add(into accumulator: UnsafeMutableBufferPointer<UInt32>, startingAt offset: Int = 0) throws {
        try Self.apply([self], signs: [.plus], to: accumulator, startingAt: offset)
    }

    /// `accumulator[i] &-= mask[offset + i]` for every `i`: removes a mask added by ``add(into:startingAt:)``.
    public func subtract(from accumulator: UnsafeMutableBufferPointer<UInt32>, startingAt offset: Int = 0) throws {
        try Self.apply([self], signs: [.minus], to: accumulator, startingAt: offset)
    }

    /// Whether a mask is added or subtracted. In pairwise masking, the participant with the
    /// lower id adds the shared mask and the other subtracts it, so the pair cancels in the sum.
    public enum Sign: Sendable, Hashable {
        case plus
        case minus
    }

    /// Applies many masks to one accumulator in a single pass: for each 16 KiB block of the
    /// accumulator, every seed's keystream is added or subtracted while the block is in cache.
    /// This is the shape of both a participant masking its input (one self mask and one mask per
    /// neighbour) and the coordinator removing the masks of a round.
    ///
    /// `offset` is the word index of `accumulator[0]` in every mask, which lets callers split a
    /// long vector into ranges and process them on several cores.
    public static func add(
        seeds: [SecretBytes],
        signs: [Sign],
        into accumulator: UnsafeMutableBufferPointer<UInt32>,
        startingAt offset: Int = 0
    ) throws {
        let prgs = try seeds.map { try MaskPRG(seed: $0) }
        try apply(prgs, signs: signs, to: accumulator, startingAt: offset)
    }

    static func apply(
        _ prgs: [MaskPRG],
        signs: [Sign],
        to accumulator: UnsafeMutableBufferPointer<UInt32>,
        startingAt offset: Int
    ) throws {
        guard prgs.count == signs.count else {
            throw CryptoError(
                code: .invalidArgument,
                message: "MaskPRG: \(prgs.count) seeds but \(signs.count) signs were given; pass one sign per seed.")
        }
        guard let acc = accumulator.baseAddress, accumulator.count > 0, !prgs.isEmpty else { return }
        let streams = try prgs.map { try $0.makeStream(startingAt: offset) }
        let scratch = Scratch(words: min(chunkWords, accumulator.count))
        defer { scratch.release() }
        let keystream = scratch.keystream
        var done = 0
        while done < accumulator.count {
            let n = min(chunkWords, accumulator.count - done)
            for (stream, sign) in zip(streams, signs) {
                try stream.encrypt(scratch.zeros, into: keystream, count: n * 4)
                switch sign {
                case .plus: addWords(acc + done, keystream, n)
                case .minus: subtractWords(acc + done, keystream, n)
                }
            }
            done += n
        }
    }

    private func makeStream(startingAt offset: Int) throws -> AESCTRStream {
        guard offset >= 0 else {
            throw CryptoError(
                code: .invalidArgument, message: "MaskPRG: the word offset must not be negative (got \(offset)).")
        }
        let stream = try seed.withUnsafeBytes { bytes in
            try AESCTRStream(
                key: UnsafeRawBufferPointer(rebasing: bytes[0..<16]),
                iv: UnsafeRawBufferPointer(rebasing: bytes[16..<32]),
                blockOffset: UInt64(offset / 4)
            )
        }
        // Skip the words of the first block that come before `offset`.
        let skipBytes = (offset % 4) * 4
        if skipBytes > 0 {
            var discard = (UInt64(0), UInt64(0))
            try withUnsafeMutableBytes(of: &discard) { buffer in
                try stream.encrypt(UnsafeRawPointer(buffer.baseAddress!), into: buffer.baseAddress!, count: skipBytes)
                sodium_memzero(buffer.baseAddress!, buffer.count)
            }
        }
        return stream
    }

    /// `acc[i] &+= UInt32(littleEndian: keystream[i])`: a straight-line loop over raw pointers
    /// with no bounds checks, so the compiler vectorises it (AVX2: 8 words per instruction).
    @inline(__always)
    static func addWords(_ acc: UnsafeMutablePointer<UInt32>, _ keystream: UnsafePointer<UInt32>, _ count: Int) {
        for i in 0..<count {
            acc[i] = acc[i] &+ UInt32(littleEndian: keystream[i])
        }
    }

    /// `acc[i] &-= UInt32(littleEndian: keystream[i])`, vectorised like ``addWords(_:_:_:)``.
    @inline(__always)
    static func subtractWords(_ acc: UnsafeMutablePointer<UInt32>, _ keystream: UnsafePointer<UInt32>, _ count: Int) {
        for i in 0..<count {
            acc[i] = acc[i] &- UInt32(littleEndian: keystream[i])
        }
    }

    /// The two reusable blocks of one expansion: a zero block (the plaintext whose encryption is
    /// the keystream) and the keystream block. The keystream block is mask material, so it is
    /// wiped before it is freed.
    private struct Scratch {
        let zeros: UnsafeMutablePointer<UInt32>
        let keystream: UnsafeMutablePointer<UInt32>
        private let base: UnsafeMutableRawPointer
        private let words: Int

        /// Blocks of `words` words (at most ``MaskPRG/chunkWords``), so short vectors do not pay
        /// for a full block.
        init(words: Int) {
            self.words = words
            let bytes = (words * 4 + 63) & ~63
            base = UnsafeMutableRawPointer.allocate(byteCount: 2 * bytes, alignment: 64)
            zeros = base.initializeMemory(as: UInt32.self, repeating: 0, count: words)
            keystream = (base + bytes).initializeMemory(as: UInt32.self, repeating: 0, count: words)
        }

        func release() {
            sodium_memzero(keystream, words * 4)
            base.deallocate()
        }
    }
}
