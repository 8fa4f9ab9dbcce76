import TesseraSupport
import Testing

@testable import TesseraCrypto

@Suite("Shamir secret sharing")
struct ShamirTests {
    static let p = Shamir.prime

    /// Reference field arithmetic by long division, independent of the Mersenne reduction
    /// under test.
    static func mulmod(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return p.dividingFullWidth(product).remainder
    }

    /// f(x) = Σ c_k x^k mod p, by powers (not Horner), for an independent check.
    static func evaluate(_ coefficients: [UInt64], at x: UInt64) -> UInt64 {
        var result: UInt64 = 0
        var power: UInt64 = 1
        for c in coefficients {
            result = (result + mulmod(c, power)) % p
            power = mulmod(power, x)
        }
        return result
    }

    @Test("hand-checkable vector: f(x) = 197121 + 5x + 7x²")
    func smallFixedVector() throws {
        // [1, 2, 3] packs little-endian into 0x030201 = 197121; the generator supplies 5 and 7.
        var generator = ScriptedGenerator(values: [5, 7])
        let shares = try Shamir.split(secret: [1, 2, 3], threshold: 3, points: [1, 2, 3, 4, 5], using: &generator)
        #expect(shares.map(\.x) == [1, 2, 3, 4, 5])
        #expect(shares.map(\.values) == [[197_133], [197_159], [197_199], [197_253], [197_321]])
        #expect(try Shamir.combine(Array(shares[2...]), threshold: 3, secretLength: 3) == [1, 2, 3])
    }

    @Test("share values equal the polynomial evaluated with the generator's coefficients")
    func polynomialVector() throws {
        let secret = Array("fourteen bytes".utf8)  // 2 field elements
        let raw: [UInt64] = [0xFFFF_FFFF_FFFF_FFFF, 0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321, 42]
        var generator = ScriptedGenerator(values: raw)
        let points: [UInt32] = [1, 2, 7, 1000, UInt32.max]
        let shares = try Shamir.split(secret: secret, threshold: 3, points: points, using: &generator)
        // Coefficients are the low 61 bits of each draw; all-ones (= p) would be rejected, which
        // 0xFFFF… & p is, so the first draw is skipped.
        let drawn = raw.dropFirst().map { $0 & Self.p }
        let elements = Shamir.pack(secret)
        #expect(elements.count == 2)
        #expect(elements[0] == 0x65_6574_7275_6F66)  // "fourtee" little-endian
        let polynomials = [[elements[0], drawn[0], drawn[1]], [elements[1], drawn[2], drawn[0]]]
        for share in shares {
            #expect(share.values == polynomials.map { Self.evaluate($0, at: UInt64(share.x)) })
        }
    }

    @Test("any t of n shares reconstruct the secret", arguments: [(1, 1), (1, 5), (2, 3), (3, 5), (7, 10), (20, 40)])
    func reconstructSubsets(threshold: Int, n: Int) throws {
        var generator = SplitMix64(seed: UInt64(threshold * 1000 + n))
        let secret = (0..<32).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let points = (1...n).map { UInt32($0) }
        let shares = try Shamir.split(secret: secret, threshold: threshold, points: points, using: &generator)
        for _ in 0..<8 {
            let subset = Array(shares.shuffled(using: &generator).prefix(threshold))
            #expect(try Shamir.combine(subset, threshold: threshold, secretLength: 32) == secret)
        }
        // More shares than needed also work.
        #expect(
            try Shamir.combine(shares.shuffled(using: &generator), threshold: threshold, secretLength: 32) == secret)
    }

    @Test("t − 1 shares are refused, and interpolating them does not give the secret")
    func belowThreshold() throws {
        var generator = SplitMix64(seed: 77)
        let secret = Array("the self-mask seed, 32 bytes....".utf8)
        let shares = try Shamir.split(secret: secret, threshold: 5, points: Array(1...9), using: &generator)
        #expect(
            thrownCode { _ = try Shamir.combine(Array(shares.prefix(4)), threshold: 5, secretLength: 32) }
                == .insufficientShares)
        // Directly: Lagrange at 0 through only 4 points lands elsewhere, for every element.
        let used = Array(shares.prefix(4))
        let lambdas = Shamir.lagrangeCoefficientsAtZero(used.map { UInt64($0.x) })
        let elements = Shamir.pack(secret)
        for e in elements.indices {
            var value: UInt64 = 0
            for (share, lambda) in zip(used, lambdas) {
                value = (value + Self.mulmod(lambda, share.values[e])) % Self.p
            }
            #expect(value != elements[e])
        }
        // Claiming a lower threshold than the split used gives a detectably wrong result
        // (or, with probability 2^-40 per element, a wrong secret).
        let code = thrownCode {
            let wrong = try Shamir.combine(used, threshold: 4, secretLength: 32)
            if wrong != secret { throw CryptoError(code: .invalidShare, message: "wrong secret") }
        }
        #expect(code == .invalidShare)
    }

    @Test("field arithmetic agrees with long division")
    func field() {
        var generator = SplitMix64(seed: 5)
        let edge: [UInt64] = [0, 1, 2, Self.p - 1, Self.p - 2, 1 << 60]
        var values = edge
        for _ in 0..<200 { values.append(generator.next() % Self.p) }
        for a in values {
            let b = values[Int(generator.next() % UInt64(values.count))]
            #expect(Field.multiply(a, b) == Self.mulmod(a, b))
            #expect(Field.add(a, b) == (a + b) % Self.p)
            #expect(Field.subtract(a, b) == (a + Self.p - b) % Self.p)
            if a != 0 {
                #expect(Field.multiply(a, Field.inverse(a)) == 1)
            }
        }
        let inverses = Field.batchInverse(Array(values.dropFirst()))
        for (v, inv) in zip(values.dropFirst(), inverses) {
            #expect(Field.multiply(v, inv) == 1)
        }
    }

    @Test("invalid parameters are rejected")
    func invalidParameters() {
        let secret: [UInt8] = [1, 2, 3]
        #expect(thrownCode { _ = try Shamir.split(secret: secret, threshold: 0, points: [1, 2]) } == .invalidArgument)
        #expect(thrownCode { _ = try Shamir.split(secret: secret, threshold: 3, points: [1, 2]) } == .invalidArgument)
        #expect(
            thrownCode { _ = try Shamir.split(secret: secret, threshold: 2, points: [1, 2, 2]) } == .invalidArgument)
        #expect(
            thrownCode { _ = try Shamir.split(secret: secret, threshold: 2, points: [0, 1, 2]) } == .invalidArgument)
    }

    @Test("inconsistent shares are rejected at combine")
    func inconsistentShares() throws {
        let shares = try Shamir.split(secret: Array(0..<20), threshold: 3, points: [1, 2, 3, 4])
        // Wrong secret length for the number of values.
        #expect(thrownCode { _ = try Shamir.combine(shares, threshold: 3, secretLength: 30) } == .invalidShare)
        // Duplicate and zero points.
        #expect(
            thrownCode { _ = try Shamir.combine([shares[0], shares[0], shares[1]], threshold: 3, secretLength: 20) }
                == .invalidShare)
        var zero = shares[0]
        zero.x = 0
        #expect(
            thrownCode { _ = try Shamir.combine([zero, shares[1], shares[2]], threshold: 3, secretLength: 20) }
                == .invalidShare)
        // A value outside the field.
        var outside = shares[0]
        outside.values[0] = Shamir.prime
        #expect(
            thrownCode { _ = try Shamir.combine([outside, shares[1], shares[2]], threshold: 3, secretLength: 20) }
                == .invalidShare)
        // Mismatched value counts.
        var short = shares[0]
        short.values.removeLast()
        #expect(
            thrownCode { _ = try Shamir.combine([short, shares[1], shares[2]], threshold: 3, secretLength: 20) }
                == .invalidShare)
    }

    @Test("empty secrets and 7-byte boundaries round-trip", arguments: [0, 1, 6, 7, 8, 13, 14, 15, 64])
    func lengths(length: Int) throws {
        let secret = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 255) }
        let shares = try Shamir.split(secret: secret, threshold: 2, points: [3, 5, 8])
        #expect(shares[0].values.count == (length + 6) / 7)
        #expect(try Shamir.combine([shares[2], shares[0]], threshold: 2, secretLength: length) == secret)
    }

    @Test("serialization round-trips and is the documented little-endian layout")
    func serialization() throws {
        let share = ShamirShare(x: 0x0102_0304, values: [1, Shamir.prime - 1])
        let bytes = share.serialized()
        #expect(bytes.count == 9 + 16)
        #expect(Array(bytes.prefix(9)) == [1, 4, 3, 2, 1, 2, 0, 0, 0])
        #expect(Array(bytes[9..<17]) == [1, 0, 0, 0, 0, 0, 0, 0])
        #expect(try ShamirShare(serialized: bytes) == share)
        let real = try Shamir.split(secret: Array(0..<32), threshold: 2, points: [1, 2])
        for s in real {
            #expect(try ShamirShare(serialized: s.serialized()) == s)
        }
    }

    @Test("malformed serialized shares are rejected")
    func malformedSerialization() {
        let good = ShamirShare(x: 3, values: [10, 20]).serialized()
        var badVersion = good
        badVersion[0] = 2
        var zeroPoint = good
        zeroPoint.replaceSubrange(1..<5, with: [0, 0, 0, 0])
        var outside = good
        outside.replaceSubrange(9..<17, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f])  // = p
        var hugeCount = good
        hugeCount.replaceSubrange(5..<9, with: [0xff, 0xff, 0xff, 0xff])
        for bytes in [
            [], Array(good.prefix(8)), Array(good.dropLast()), good + [0], badVersion, zeroPoint, outside, hugeCount,
        ] {
            #expect(thrownCode { _ = try ShamirShare(serialized: bytes) } == .invalidShare)
        }
    }

    @Test("n = 1000, t = 500: split and combine a 32-byte secret quickly")
    func largeCohort() throws {
        let secret = SecureRandom.bytes(32)
        let points = (1...1000).map { UInt32($0) }
        let clock = ContinuousClock()
        var shares: [ShamirShare] = []
        let elapsed = try clock.measure {
            shares = try Shamir.split(secret: secret, threshold: 500, points: points)
            let recovered = try Shamir.combine(Array(shares.suffix(500)), threshold: 500, secretLength: 32)
            #expect(recovered == secret)
        }
        #expect(shares.count == 1000)
        // Generous bound: a few milliseconds on an idle machine; the CI machine is shared.
        #expect(elapsed < .seconds(2))
    }
}
