import TesseraCrypto

/// Shamir reconstruction of many secrets whose shares come from the same holders.
///
/// `Shamir.combine` recomputes the Lagrange coefficients for every secret, which costs O(t²)
/// field multiplications each time. In unmasking the server rebuilds one secret per
/// participant, and with the complete graph the first t responders hold a share of every one
/// of them, so the coefficients are the same for all: at n = 500, t = 334 that turns ~55 M
/// multiplications (≈ 200 ms) into ~1 M. This type caches the coefficients per set of
/// evaluation points and then needs only t multiplications per field element.
///
/// It reconstructs exactly what `Shamir.combine` does: the same field GF(2^61 − 1), the same
/// packing of 7 little-endian bytes per element, and the same rejection of a reconstruction
/// whose elements have bits beyond their bytes (the sign of shares from different secrets).
/// The tests cross-check it against `Shamir.combine`.
struct BatchReconstructor {
    static let prime: UInt64 = (1 << 61) - 1
    private var cache: [[UInt32]: [UInt64]] = [:]

    /// Reconstructs a `secretLength`-byte secret from the `threshold` shares with the smallest
    /// points; `nil` if there are too few shares or they do not reconstruct a packed secret.
    /// Shares must have distinct, non-zero points and values below the prime (the wire
    /// decoding of `ShamirShare` and the server's checks guarantee both).
    mutating func reconstruct(_ shares: [ShamirShare], threshold: Int, secretLength: Int) -> [UInt8]? {
        guard threshold >= 1, shares.count >= threshold else { return nil }
        let used = shares.sorted { $0.x < $1.x }.prefix(threshold)
        let points = used.map(\.x)
        let lambdas: [UInt64]
        if let cached = cache[points] {
            lambdas = cached
        } else {
            guard let computed = Self.lagrangeAtZero(points) else { return nil }
            cache[points] = computed
            lambdas = computed
        }
        let elementCount = (secretLength + Shamir.bytesPerElement - 1) / Shamir.bytesPerElement
        var elements = [UInt64](repeating: 0, count: elementCount)
        for (share, lambda) in zip(used, lambdas) {
            guard share.values.count == elementCount else { return nil }
            for e in 0..<elementCount {
                elements[e] = Self.add(elements[e], Self.multiply(lambda, share.values[e]))
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(secretLength)
        for (e, element) in elements.enumerated() {
            let width = min(Shamir.bytesPerElement, secretLength - e * Shamir.bytesPerElement)
            guard element >> (8 * UInt64(width)) == 0 else { return nil }
            for index in 0..<width { bytes.append(UInt8(truncatingIfNeeded: element >> (8 * UInt64(index)))) }
        }
        for e in elements.indices { elements[e] = 0 }
        return bytes
    }

    /// λ_i = Π_{j≠i} x_j / (x_j − x_i), so that f(0) = Σ λ_i f(x_i) when deg f < count.
    /// `nil` for repeated or zero points.
    static func lagrangeAtZero(_ points: [UInt32]) -> [UInt64]? {
        let xs = points.map { UInt64($0) }
        guard Set(xs).count == xs.count, !xs.contains(0) else { return nil }
        let n = xs.count
        var numerators = [UInt64](repeating: 1, count: n)
        var denominators = [UInt64](repeating: 1, count: n)
        for i in 0..<n {
            var num: UInt64 = 1
            var den: UInt64 = 1
            for j in 0..<n where j != i {
                num = multiply(num, xs[j])
                den = multiply(den, subtract(xs[j], xs[i]))
            }
            numerators[i] = num
            denominators[i] = den
        }
        // Montgomery's batch inversion: one exponentiation for all denominators.
        var prefix = [UInt64](repeating: 1, count: n)
        var running: UInt64 = 1
        for i in 0..<n {
            prefix[i] = running
            running = multiply(running, denominators[i])
        }
        var inverse = power(running, prime - 2)
        var lambdas = [UInt64](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            lambdas[i] = multiply(numerators[i], multiply(inverse, prefix[i]))
            inverse = multiply(inverse, denominators[i])
        }
        return lambdas
    }

    @inline(__always)
    static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let s = a &+ b
        return s >= prime ? s &- prime : s
    }

    @inline(__always)
    static func subtract(_ a: UInt64, _ b: UInt64) -> UInt64 {
        a >= b ? a &- b : a &+ (prime &- b)
    }

    /// Multiplication modulo the Mersenne prime: 2^61 ≡ 1, so the 122-bit product folds into
    /// `8·hi + (lo >> 61) + (lo & p)` and one more fold reduces it.
    @inline(__always)
    static func multiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (hi, lo) = a.multipliedFullWidth(by: b)
        var s = (hi << 3) &+ (lo >> 61) &+ (lo & prime)
        s = (s & prime) &+ (s >> 61)
        return s >= prime ? s &- prime : s
    }

    static func power(_ base: UInt64, _ exponent: UInt64) -> UInt64 {
        var result: UInt64 = 1
        var b = base
        var e = exponent
        while e > 0 {
            if e & 1 == 1 { result = multiply(result, b) }
            b = multiply(b, b)
            e >>= 1
        }
        return result
    }
}
