import Testing

@testable import TesseraSecAgg

/// Metrics inside the masked vector: the sum of the blocks decodes to the weighted means over
/// the sites that reported each metric, exactly, at the most inputs allowed.
@Suite("Metrics inside the secure sum") struct MetricsEncodingTests {
    func sum(_ blocks: [[UInt32]]) -> [UInt32] {
        blocks.dropFirst().reduce(blocks[0]) { total, block in zip(total, block).map { $0 &+ $1 } }
    }

    @Test("Weighted means over the sites that report each metric; a missing value is not a zero")
    func weightedMeans() throws {
        let encoding = try MetricsEncoding(count: 3)
        let a = try encoding.encode([0.5, 0.9, nil], weight: 10)
        let b = try encoding.encode([1.5, nil, 0.7], weight: 30)
        #expect(a.count == encoding.wordCount && encoding.wordCount == 4 * 7)
        let (weight, means) = try encoding.decode(sum([a, b])[...], inputCount: 2)
        #expect(weight == 40)
        let expected: Double = (0.5 * 10 + 1.5 * 30) / 40
        let loss = try #require(means[0])
        #expect(abs(loss - expected) < 1e-6)
        #expect(abs(try #require(means[1]) - 0.9) < 1e-6)
        #expect(abs(try #require(means[2]) - 0.7) < 1e-6)
    }

    @Test("The largest weights, values and number of inputs sum without wrapping")
    func noWrapAtTheLimits() throws {
        let encoding = try MetricsEncoding(count: 1)
        let block = try encoding.encode([MetricsEncoding.maximumValue], weight: .max)
        var total = [UInt64](repeating: 0, count: block.count)
        for (index, word) in block.enumerated() { total[index] = UInt64(word) * UInt64(MetricsEncoding.maximumInputs) }
        #expect(total.allSatisfy { $0 <= UInt64(UInt32.max) }, "a digit column would wrap")
        let summed = total.map { UInt32($0) }
        let (weight, means) = try encoding.decode(summed[...], inputCount: MetricsEncoding.maximumInputs)
        #expect(weight == Double(UInt32.max) * Double(MetricsEncoding.maximumInputs))
        #expect(abs(try #require(means[0]) - MetricsEncoding.maximumValue) < 1e-6)
    }

    @Test("Values are clamped to 0...maximumValue, and non-finite values count as missing")
    func clampingAndMissing() throws {
        let encoding = try MetricsEncoding(count: 3)
        let block = try encoding.encode([-4, 1e9, .nan], weight: 2)
        let (_, means) = try encoding.decode(block[...], inputCount: 1)
        #expect(means[0] == 0)
        #expect(means[1] == MetricsEncoding.maximumValue)
        #expect(means[2] == nil)
    }

    @Test("Wrong counts and lengths are refused")
    func refusals() throws {
        #expect(throws: SecAggError.self) { _ = try MetricsEncoding(count: -1) }
        #expect(throws: SecAggError.self) { _ = try MetricsEncoding(count: 65) }
        let encoding = try MetricsEncoding(count: 2)
        #expect(throws: SecAggError.self) { _ = try encoding.encode([1], weight: 1) }
        #expect(throws: SecAggError.self) { _ = try encoding.decode([1, 2, 3][...], inputCount: 1) }
        let block = try encoding.encode([1, 2], weight: 1)
        #expect(throws: SecAggError.self) {
            _ = try encoding.decode(block[...], inputCount: MetricsEncoding.maximumInputs + 1)
        }
        #expect(try MetricsEncoding(count: 0).wordCount == 0)
    }
}
