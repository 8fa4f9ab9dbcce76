/// One participant's Shamir share of a byte secret: the sharing polynomials of every field
/// element of the secret, evaluated at the same point ``x``.
///
/// Secure aggregation gives each neighbour a share of a participant's self-mask seed and of its
/// X25519 private key, so that any `t` survivors can rebuild what is needed to unmask the sum
/// while fewer than `t` learn nothing.
public struct ShamirShare: Sendable, Hashable {
    /// The evaluation point: the 1-based index of the participant holding the share. Never 0,
    /// because the polynomial's value at 0 is the secret itself.
    public var x: UInt32
    /// One field element (below ``Shamir/prime``) per 7-byte block of the secret.
    public var values: [UInt64]

    public init(x: UInt32, values: [UInt64]) {
        self.x = x
        self.values = values
    }

    /// Version of the binary encoding below.
    public static let serializationVersion: UInt8 = 1

    /// A stable binary encoding, to send a share (inside an AEAD envelope) or store it:
    ///
    ///     u8  version (= 1)
    ///     u32 x                    little-endian, non-zero
    ///     u32 count                number of values, little-endian
    ///     u64 values[count]        little-endian, each < 2^61 − 1
    public func serialized() -> [UInt8] {
        precondition(values.count <= Int(UInt32.max), "a Shamir share cannot hold more than 2^32 − 1 values")
        var bytes: [UInt8] = [Self.serializationVersion]
        bytes.reserveCapacity(9 + 8 * values.count)
        appendLittleEndian(x, to: &bytes)
        appendLittleEndian(UInt32(truncatingIfNeeded: values.count), to: &bytes)
        for value in values {
            appendLittleEndian(value, to: &bytes)
        }
        return bytes
    }

    /// Decodes ``serialized()``, rejecting anything that is not exactly one well-formed share.
    public init(serialized bytes: [UInt8]) throws {
        guard bytes.count >= 9 else {
            throw CryptoError(
                code: .invalidShare,
                message: "A serialized Shamir share has a 9-byte header, but only \(bytes.count) bytes were received.")
        }
        guard bytes[0] == Self.serializationVersion else {
            throw CryptoError(
                code: .invalidShare,
                message:
                    "Unsupported Shamir share encoding version \(bytes[0]); this build reads version \(Self.serializationVersion)."
            )
        }
        let x = readLittleEndian(UInt32.self, bytes, at: 1)
        let count = Int(readLittleEndian(UInt32.self, bytes, at: 5))
        guard x != 0 else {
            throw CryptoError(
                code: .invalidShare,
                message:
                    "A Shamir share has evaluation point 0, which would be the secret itself; the share is corrupt.")
        }
        guard bytes.count == 9 + 8 * count else {
            throw CryptoError(
                code: .invalidShare,
                message:
                    "A Shamir share header announces \(count) values (\(9 + 8 * count) bytes), but \(bytes.count) bytes were received."
            )
        }
        var values = [UInt64]()
        values.reserveCapacity(count)
        for index in 0..<count {
            let value = readLittleEndian(UInt64.self, bytes, at: 9 + 8 * index)
            guard value < Shamir.prime else {
                throw CryptoError(
                    code: .invalidShare,
                    message:
                        "Value \(index) of the Shamir share for point \(x) is not below the field prime 2^61 − 1; the share is corrupt."
                )
            }
            values.append(value)
        }
        self.init(x: x, values: values)
    }
}

@inline(__always)
private func readLittleEndian<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
    var value: T = 0
    for index in 0..<MemoryLayout<T>.size {
        value |= T(bytes[offset + index]) << (8 * index)
    }
    return value
}

/// Shamir `t`-of-`n` secret sharing of byte strings over GF(p), p = 2^61 − 1.
///
/// Why this field: p is a Mersenne prime, so reducing a 122-bit product needs two shifts, a mask
/// and two additions instead of a division, and a 64-bit word holds an element with room for a
/// lazy addition. Byte secrets are packed 7 bytes (56 bits < 61) per element, little-endian,
/// so every packing is a field element and unpacking can detect corrupted reconstructions
/// (a value ≥ 2^56 cannot come from honest shares).
///
/// Each element `s` gets its own random polynomial `f(X) = s + a1·X + … + a(t−1)·X^(t−1)`, with
/// coefficients uniform in the field and drawn from the caller's generator, and share `i` holds
/// `f(x_i)`. Any `t` shares determine `f` (Lagrange interpolation at 0); any `t − 1` are
/// uniformly distributed whatever the secret.
public enum Shamir {
    /// The field modulus, 2^61 − 1.
    public static let prime: UInt64 = (1 << 61) - 1

    /// Bytes packed into one field element.
    public static let bytesPerElement = 7

    /// Splits `secret` into one share per entry of `points`, any `threshold` of which
    /// reconstruct it. Coefficients come from `generator` — a ``SecureRandomGenerator`` in
    /// production, a seeded generator only in tests.
    ///
    /// Throws ``CryptoError/Code/invalidArgument`` if `threshold` is not in `1...points.count`,
    /// or a point is 0 or repeated.
    public static func split<G: RandomNumberGenerator>(
        secret: [UInt8],
        threshold: Int,
        points: [UInt32],
        using generator: inout G
    ) throws -> [ShamirShare] {
        guard threshold >= 1, threshold <= points.count else {
            throw CryptoError(
                code: .invalidArgument,
                message:
                    "Shamir threshold must be between 1 and the number of share points (\(points.count)), but it is \(threshold)."
            )
        }
        try validatePoints(points, code: .invalidArgument)

        var elements = pack(secret)
        let n = points.count
        // values[share][element], filled element by element.
        var values = [[UInt64]](repeating: [UInt64](repeating: 0, count: elements.count), count: n)
        var coefficients = [UInt64](repeating: 0, count: threshold)
        let xs = points.map { UInt64($0) }
        for (e, element) in elements.enumerated() {
            // coefficients[0] is the secret; the rest are uniform field elements.
            coefficients[0] = element
            for k in 1..<threshold {
                coefficients[k] = randomElement(using: &generator)
            }
            coefficients.withUnsafeBufferPointer { c in
                // Four points at a time: Horner is one long chain of dependent multiplications,
                // so interleaving independent points keeps the multiplier busy.
                var i = 0
                while i + 4 <= n {
                    let (v0, v1, v2, v3) = evaluate4(c, at: (xs[i], xs[i + 1], xs[i + 2], xs[i + 3]))
                    values[i][e] = v0
                    values[i + 1][e] = v1
                    values[i + 2][e] = v2
                    values[i + 3][e] = v3
                    i += 4
                }
                while i < n {
                    values[i][e] = evaluate(c, at: xs[i])
                    i += 1
                }
            }
        }
        // Coefficients and packed elements reveal the secret: clear them before releasing.
        for k in coefficients.indices { coefficients[k] = 0 }
        for e in elements.indices { elements[e] = 0 }
        return (0..<n).map { ShamirShare(x: points[$0], values: values[$0]) }
    }

    /// ``split(secret:threshold:points:using:)`` with coefficients from the operating system's
    /// CSPRNG (``SecureRandomGenerator``).
    public static func split(secret: [UInt8], threshold: Int, points: [UInt32]) throws -> [ShamirShare] {
        var generator = SecureRandomGenerator()
        return try split(secret: secret, threshold: threshold, points: points, using: &generator)
    }

    /// Reconstructs a `secretLength`-byte secret from at least `threshold` shares (the first
    /// `threshold` are used; any extra ones are only validated).
    ///
    /// Throws ``CryptoError/Code/insufficientShares`` with fewer than `threshold` shares, and
    /// ``CryptoError/Code/invalidShare`` for a zero or repeated point, a share whose length does
    /// not match `secretLength`, a value outside the field, or a reconstruction that cannot be a
    /// packed secret (shares from different secrets or corrupted in transit).
    public static func combine(_ shares: [ShamirShare], threshold: Int, secretLength: Int) throws -> [UInt8] {
        guard threshold >= 1 else {
            throw CryptoError(
                code: .invalidArgument, message: "Shamir threshold must be at least 1, but it is \(threshold).")
        }
        guard secretLength >= 0 else {
            throw CryptoError(
                code: .invalidArgument, message: "Secret length must not be negative, but it is \(secretLength).")
        }
        guard shares.count >= threshold else {
            throw CryptoError(
                code: .insufficientShares,
                message: "Reconstruction needs \(threshold) Shamir shares, but only \(shares.count) were supplied.")
        }
        try validatePoints(shares.map(\.x), code: .invalidShare)
        let elementCount = (secretLength + bytesPerElement - 1) / bytesPerElement
        for share in shares {
            guard share.values.count == elementCount else {
                throw CryptoError(
                    code: .invalidShare,
                    message:
                        "The Shamir share for point \(share.x) holds \(share.values.count) values, but a \(secretLength)-byte secret needs \(elementCount)."
                )
            }
            guard share.values.allSatisfy({ $0 < prime }) else {
                throw CryptoError(
                    code: .invalidShare,
                    message: "The Shamir share for point \(share.x) has a value outside the field 2^61 − 1.")
            }
        }
        let used = Array(shares.prefix(threshold))
        let lambdas = lagrangeCoefficientsAtZero(used.map { UInt64($0.x) })
        var elements = [UInt64](repeating: 0, count: elementCount)
        for (share, lambda) in zip(used, lambdas) {
            for e in 0..<elementCount {
                elements[e] = Field.add(elements[e], Field.multiply(lambda, share.values[e]))
            }
        }
        guard let secret = unpack(elements, length: secretLength) else {
            throw CryptoError(
                code: .invalidShare,
                message:
                    "The Shamir shares do not reconstruct a valid \(secretLength)-byte secret: they belong to different secrets or were corrupted."
            )
        }
        return secret
    }

    // MARK: - Internals (internal for tests)

    /// Splits bytes into little-endian 7-byte field elements; the last one may be shorter.
    static func pack(_ bytes: [UInt8]) -> [UInt64] {
        stride(from: 0, to: bytes.count, by: bytesPerElement).map { start in
            var element: UInt64 = 0
            for index in start..<min(start + bytesPerElement, bytes.count) {
                element |= UInt64(bytes[index]) << (8 * (index - start))
            }
            return element
        }
    }

    /// Inverse of ``pack(_:)``; `nil` if an element has bits beyond the bytes it should hold.
    static func unpack(_ elements: [UInt64], length: Int) -> [UInt8]? {
        var bytes = [UInt8]()
        bytes.reserveCapacity(length)
        for (e, element) in elements.enumerated() {
            let width = min(bytesPerElement, length - e * bytesPerElement)
            guard element >> (8 * width) == 0 else { return nil }
            for index in 0..<width {
                bytes.append(UInt8(truncatingIfNeeded: element >> (8 * index)))
            }
        }
        return bytes
    }

    /// A uniform field element by rejection sampling: the low 61 bits are uniform on
    /// [0, 2^61), and only 2^61 − 1 itself (probability 2^−61) is rejected.
    @inline(__always)
    static func randomElement<G: RandomNumberGenerator>(using generator: inout G) -> UInt64 {
        while true {
            let candidate = generator.next() & prime
            if candidate < prime { return candidate }
        }
    }

    /// Horner evaluation of `c[0] + c[1]·x + … ` at `x`.
    @inline(__always)
    static func evaluate(_ c: UnsafeBufferPointer<UInt64>, at x: UInt64) -> UInt64 {
        var accumulator: UInt64 = 0
        var k = c.count - 1
        while k >= 0 {
            accumulator = Field.add(Field.multiply(accumulator, x), c[k])
            k -= 1
        }
        return accumulator
    }

    /// ``evaluate(_:at:)`` at four points with interleaved, independent Horner chains.
    @inline(__always)
    static func evaluate4(
        _ c: UnsafeBufferPointer<UInt64>,
        at x: (UInt64, UInt64, UInt64, UInt64)
    ) -> (UInt64, UInt64, UInt64, UInt64) {
        var a0: UInt64 = 0
        var a1: UInt64 = 0
        var a2: UInt64 = 0
        var a3: UInt64 = 0
        var k = c.count - 1
        while k >= 0 {
            let coefficient = c[k]
            a0 = Field.add(Field.multiply(a0, x.0), coefficient)
            a1 = Field.add(Field.multiply(a1, x.1), coefficient)
            a2 = Field.add(Field.multiply(a2, x.2), coefficient)
            a3 = Field.add(Field.multiply(a3, x.3), coefficient)
            k -= 1
        }
        return (a0, a1, a2, a3)
    }

    /// λ_i = Π_{j≠i} x_j / (x_j − x_i), so that f(0) = Σ λ_i f(x_i) for deg f < xs.count.
    /// The denominators are inverted together (Montgomery's batch trick: one inversion and
    /// 3(n−1) multiplications), so the cost is dominated by the O(n²) products.
    static func lagrangeCoefficientsAtZero(_ xs: [UInt64]) -> [UInt64] {
        let n = xs.count
        var numerators = [UInt64](repeating: 1, count: n)
        var denominators = [UInt64](repeating: 1, count: n)
        xs.withUnsafeBufferPointer { x in
            for i in 0..<n {
                var num: UInt64 = 1
                var den: UInt64 = 1
                let xi = x[i]
                for j in 0..<n where j != i {
                    num = Field.multiply(num, x[j])
                    den = Field.multiply(den, Field.subtract(x[j], xi))
                }
                numerators[i] = num
                denominators[i] = den
            }
        }
        let inverses = Field.batchInverse(denominators)
        return (0..<n).map { Field.multiply(numerators[$0], inverses[$0]) }
    }

    /// Rejects zero and repeated points, both of which would break the scheme.
    private static func validatePoints(_ points: [UInt32], code: CryptoError.Code) throws {
        var seen = Set<UInt32>(minimumCapacity: points.count)
        for point in points {
            guard point != 0 else {
                throw CryptoError(
                    code: code,
                    message:
                        "Shamir evaluation point 0 is not allowed: the polynomial's value at 0 is the secret. Use 1-based participant indices."
                )
            }
            guard seen.insert(point).inserted else {
                throw CryptoError(
                    code: code,
                    message:
                        "Shamir evaluation point \(point) appears more than once; every participant needs a distinct point."
                )
            }
        }
    }
}

/// Reconstructs many secrets shared among the same holders.
///
/// `Shamir.combine` recomputes the Lagrange coefficients for every secret: O(t²) field
/// multiplications each time. When one party rebuilds a secret per participant from the same
/// t holders (the secure-aggregation server's unmasking, where with the complete graph the
/// first t responders hold a share of every secret), the coefficients are the same for all.
/// This type caches them per set of evaluation points, so each further secret costs t
/// multiplications per field element instead of O(t²).
///
/// It reconstructs exactly what `Shamir.combine` does (same field, same 7-byte packing, same
/// rejection of elements with bits beyond their bytes), using the `threshold` shares with the
/// smallest points.
public struct ShamirReconstructor: Sendable {
    private var cache: [[UInt32]: [UInt64]] = [:]

    public init() {}

    /// The `secretLength`-byte secret, or `nil` when there are too few shares, the points are
    /// repeated or zero, a share has the wrong length, or the shares do not reconstruct a
    /// packed secret (the sign of shares from different secrets). Share values must be below
    /// the prime (`ShamirShare`'s decoding guarantees it).
    public mutating func reconstruct(_ shares: [ShamirShare], threshold: Int, secretLength: Int) -> [UInt8]? {
        guard threshold >= 1, shares.count >= threshold, secretLength >= 0 else { return nil }
        let used = shares.sorted { $0.x < $1.x }.prefix(threshold)
        let points = used.map(\.x)
        let lambdas: [UInt64]
        if let cached = cache[points] {
            lambdas = cached
        } else {
            guard Set(points).count == points.count, !points.contains(0) else { return nil }
            lambdas = Shamir.lagrangeCoefficientsAtZero(points.map { UInt64($0) })
            cache[points] = lambdas
        }
        let elementCount = (secretLength + Shamir.bytesPerElement - 1) / Shamir.bytesPerElement
        var elements = [UInt64](repeating: 0, count: elementCount)
        defer { for e in elements.indices { elements[e] = 0 } }
        for (share, lambda) in zip(used, lambdas) {
            guard share.values.count == elementCount else { return nil }
            for e in 0..<elementCount {
                elements[e] = Field.add(elements[e], Field.multiply(lambda, share.values[e]))
            }
        }
        return Shamir.unpack(elements, length: secretLength)
    }
}

/// Arithmetic in GF(2^61 − 1). Inputs and outputs are fully reduced (< p).
enum Field {
    static let p = Shamir.prime

    @inline(__always)
    static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let s = a &+ b  // < 2^62, no overflow
        return s >= p ? s &- p : s
    }

    @inline(__always)
    static func subtract(_ a: UInt64, _ b: UInt64) -> UInt64 {
        a >= b ? a &- b : a &+ (p &- b)
    }

    /// Multiplication with Mersenne reduction: with 2^61 ≡ 1 (mod p), the 122-bit product
    /// `hi·2^64 + lo` is congruent to `8·hi + (lo >> 61) + (lo & p)`, which is below 2^62 + 8,
    /// and one more fold plus a conditional subtraction reduces it fully.
    @inline(__always)
    static func multiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (hi, lo) = a.multipliedFullWidth(by: b)
        var s = (hi << 3) &+ (lo >> 61) &+ (lo & p)
        s = (s & p) &+ (s >> 61)
        return s >= p ? s &- p : s
    }

    /// a^(p−2) = a^(−1) for a ≠ 0 (Fermat). Returns 0 for 0.
    static func inverse(_ a: UInt64) -> UInt64 {
        var result: UInt64 = 1
        var base = a
        var exponent = p - 2
        while exponent > 0 {
            if exponent & 1 == 1 { result = multiply(result, base) }
            base = multiply(base, base)
            exponent >>= 1
        }
        return result
    }

    /// Inverses of all (non-zero) `values` with a single field inversion.
    static func batchInverse(_ values: [UInt64]) -> [UInt64] {
        guard !values.isEmpty else { return [] }
        var prefix = [UInt64](repeating: 1, count: values.count)
        var running: UInt64 = 1
        for i in values.indices {
            prefix[i] = running
            running = multiply(running, values[i])
        }
        var inverseRunning = inverse(running)
        var result = [UInt64](repeating: 0, count: values.count)
        for i in values.indices.reversed() {
            result[i] = multiply(inverseRunning, prefix[i])
            inverseRunning = multiply(inverseRunning, values[i])
        }
        return result
    }
}
