/// A sample-weighted sum of `Float` vectors whose value does not depend on the order the
/// vectors are added in, to the bit: what makes a plaintext round's aggregate a function of the
/// updates alone, whatever order the sites' updates arrive in (floating-point addition is not
/// associative, so a running `Double` sum is not).
///
/// Every term `w·x` (an integer weight below 2³², a finite `Float`) is an integer multiple of
/// 2⁻¹⁴⁹. Its bits are cut into fixed 40-bit digits (bins), and each coordinate keeps, as two
/// `Int64` counters, the exact sums of the digits in the highest bin any of its terms reached
/// and in the bin below; digits below those two are dropped. Which bins are kept is the largest
/// term's doing, and integer sums do not depend on order, so the result is order-independent
/// (the binned, reproducible summation of Demmel and Nguyen, in exact integers). A coordinate
/// keeps at least 40 bits below its largest term, so the error is under `n·2⁻⁴⁰` of that term
/// for `n` updates. It costs 17 bytes per coordinate: about twice a `Double` sum, and never one
/// buffer per update.
struct ReproducibleSum: Sendable {
    /// Digits per bin. Each counter adds digits below 2⁴⁰, so ``maximumTerms`` of them fit an `Int64`.
    static let binBits = 40
    /// The most vectors one sum takes (2²³ − 1).
    static let maximumTerms = (1 << (63 - binBits)) - 1
    private static let digitMask: UInt64 = (1 << UInt64(binBits)) - 1

    /// Per coordinate: the digit sums of bin `top` and of bin `top − 1`.
    private var high: [Int64]
    private var low: [Int64]
    private var top: [UInt8]
    private(set) var totalWeight: UInt64 = 0
    private(set) var terms = 0

    init(count: Int) {
        high = [Int64](repeating: 0, count: count)
        low = high
        top = [UInt8](repeating: 0, count: count)
    }

    var count: Int { high.count }

    /// Adds `weight · vector`. The values must be finite (the callers check updates first).
    mutating func add(_ vector: UnsafeBufferPointer<Float>, weight: UInt32) {
        precondition(vector.count == count, "ReproducibleSum: \(vector.count) values into a sum of \(count)")
        precondition(terms < Self.maximumTerms, "ReproducibleSum takes at most \(Self.maximumTerms) vectors")
        terms += 1
        totalWeight += UInt64(weight)
        guard weight > 0 else { return }
        high.withUnsafeMutableBufferPointer { high in
            low.withUnsafeMutableBufferPointer { low in
                top.withUnsafeMutableBufferPointer { top in
                    for j in 0..<vector.count {
                        Self.deposit(vector[j], weight: weight, high: &high[j], low: &low[j], top: &top[j])
                    }
                }
            }
        }
    }

    mutating func add(_ vector: [Float], weight: UInt32) {
        vector.withUnsafeBufferPointer { add($0, weight: weight) }
    }

    /// `Float(sum / totalWeight)` for every coordinate: the weighted mean (zeros when no weight
    /// was added).
    var mean: [Float] {
        let total = Double(totalWeight)
        return (0..<count).map { j in
            total > 0 ? Float(Self.value(high: high[j], low: low[j], top: top[j]) / total) : 0
        }
    }

    /// The sum's coordinate `j`, rounded to `Double`.
    func value(at j: Int) -> Double { Self.value(high: high[j], low: low[j], top: top[j]) }

    /// Adds the term `weight · x` to one coordinate's bins.
    @inline(__always)
    static func deposit(_ x: Float, weight: UInt32, high: inout Int64, low: inout Int64, top: inout UInt8) {
        precondition(x.isFinite, "ReproducibleSum adds finite values only")
        // x = m · 2^(p − 149) with an integer m < 2²⁴ and 0 ≤ p ≤ 253.
        let exponent = Int(x.exponentBitPattern)
        let m = UInt64(x.significandBitPattern) | (exponent == 0 ? 0 : 1 << 23)
        let product = m * UInt64(weight)
        guard product != 0 else { return }
        let position = max(exponent - 1, 0)
        let bin = (position + 63 - product.leadingZeroBitCount) / binBits
        if bin > Int(top) {
            // The window moves up: the old top becomes the lower bin when it is next to the new
            // one; everything below the new window is dropped, as it is for later terms.
            low = bin == Int(top) + 1 ? high : 0
            high = 0
            top = UInt8(bin)
        }
        let upper = Int64(digit(product, position: position, bin: Int(top)))
        let lower = Int64(digit(product, position: position, bin: Int(top) - 1))
        if x.sign == .minus {
            high -= upper
            low -= lower
        } else {
            high += upper
            low += lower
        }
    }

    /// Bits `[40·bin, 40·bin + 40)` of `product · 2^position`.
    @inline(__always)
    static func digit(_ product: UInt64, position: Int, bin: Int) -> UInt64 {
        let shift = binBits * bin - position
        if shift >= 64 || shift <= -binBits { return 0 }
        return (shift >= 0 ? product >> UInt64(shift) : product << UInt64(-shift)) & digitMask
    }

    /// One coordinate's value, `(high · 2⁴⁰ + low) · 2^(40·(top − 1) − 149)`, rounded to `Double`
    /// (a function of the counters alone, so of the terms alone).
    static func value(high: Int64, low: Int64, top: UInt8) -> Double {
        let scale = binBits * (Int(top) - 1) - 149
        let combined = Double(high) * Double(sign: .plus, exponent: binBits, significand: 1) + Double(low)
        return Double(sign: .plus, exponent: scale, significand: combined)
    }
}
