/// Per-site metrics (a loss, an accuracy, an AUC) carried inside a masked vector, so that the
/// server learns only their weighted sums over the survivors, never one site's values.
///
/// Each metric a site reports becomes two quantities, its value times the site's weight and
/// the weight itself (zero when the site has no value for it: a missing accuracy is not a zero
/// accuracy). The weight alone leads the block. Each quantity is a non-negative fixed-point
/// integer of up to 64 bits written as four 16-bit digits, one per 32-bit word: a word then
/// sums at most `65 535` digits without wrapping modulo 2^32, so the sum of every quantity is
/// exact whatever the values. That costs 4 words per quantity, nothing beside a model.
///
/// Values are clamped to `0...maximumValue`; a non-finite value counts as missing.
public struct MetricsEncoding: Sendable, Hashable {
    /// Digits (16 bits each, one per word) of one quantity.
    public static let digitsPerQuantity = 4
    /// Fractional bits of the fixed-point values.
    public static let fractionBits = 20
    /// Values above this are clamped: it keeps `value × weight × 2^fractionBits` below 2^64
    /// for any 32-bit weight.
    public static let maximumValue: Double = 1024
    /// The most inputs whose digits sum without wrapping in a 32-bit word.
    public static let maximumInputs = 65_535

    /// Metrics per site.
    public let count: Int

    public init(count: Int) throws(SecAggError) {
        guard (0...64).contains(count) else {
            throw SecAggError(
                code: .invalidConfiguration, message: "A metrics block holds 0 to 64 metrics, not \(count).")
        }
        self.count = count
    }

    /// Words the block adds to the vector: none without metrics.
    public var wordCount: Int { count == 0 ? 0 : Self.digitsPerQuantity * (1 + 2 * count) }

    /// The block for one site: its weight, then each metric's weighted value and weight.
    public func encode(_ values: [Double?], weight: UInt32) throws(SecAggError) -> [UInt32] {
        guard values.count == count else {
            throw SecAggError(
                code: .wrongVectorLength, message: "Expected \(count) metrics, got \(values.count).")
        }
        guard count > 0 else { return [] }
        var words: [UInt32] = []
        words.reserveCapacity(wordCount)
        Self.append(UInt64(weight), to: &words)
        let scale = Double(UInt64(1) << Self.fractionBits)
        for value in values {
            guard let value, value.isFinite else {
                Self.append(0, to: &words)
                Self.append(0, to: &words)
                continue
            }
            let clamped = min(max(value, 0), Self.maximumValue)
            Self.append(UInt64((clamped * Double(weight) * scale).rounded()), to: &words)
            Self.append(UInt64(weight), to: &words)
        }
        return words
    }

    /// The summed block of `inputCount` sites: the total weight and each metric's weighted mean
    /// over the sites that reported it (`nil` where none did).
    public func decode(
        _ sum: ArraySlice<UInt32>, inputCount: Int
    ) throws(SecAggError) -> (totalWeight: Double, means: [Double?]) {
        guard sum.count == wordCount else {
            throw SecAggError(
                code: .wrongVectorLength,
                message: "A metrics block of \(count) has \(wordCount) words, not \(sum.count).")
        }
        guard (0...Self.maximumInputs).contains(inputCount) else {
            throw SecAggError(
                code: .invalidConfiguration,
                message: "Metrics of \(inputCount) inputs cannot be summed exactly (at most \(Self.maximumInputs)).")
        }
        guard count > 0 else { return (0, []) }
        var quantities: [Double] = []
        quantities.reserveCapacity(1 + 2 * count)
        var index = sum.startIndex
        for _ in 0..<(1 + 2 * count) {
            var total = 0.0
            for digit in 0..<Self.digitsPerQuantity {
                total += Double(sum[index]) * Double(UInt64(1) << (16 * digit))
                index += 1
            }
            quantities.append(total)
        }
        let scale = Double(UInt64(1) << Self.fractionBits)
        var means: [Double?] = []
        for metric in 0..<count {
            let weighted = quantities[1 + 2 * metric]
            let weight = quantities[2 + 2 * metric]
            means.append(weight > 0 ? weighted / scale / weight : nil)
        }
        return (quantities[0], means)
    }

    private static func append(_ value: UInt64, to words: inout [UInt32]) {
        for digit in 0..<digitsPerQuantity {
            words.append(UInt32(truncatingIfNeeded: (value >> (16 * UInt64(digit))) & 0xFFFF))
        }
    }
}
