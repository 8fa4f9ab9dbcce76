import TesseraTensor
import Testing

@testable import TesseraFederation

/// ``ReproducibleSum``: a weighted sum whose bits do not depend on the order of its terms.
@Suite struct ReproducibleSumTests {
    static func sum(_ vectors: [[Float]], weights: [UInt32]) -> ReproducibleSum {
        var sum = ReproducibleSum(count: vectors[0].count)
        for (vector, weight) in zip(vectors, weights) { sum.add(vector, weight: weight) }
        return sum
    }

    /// Values spread over the whole `Float` range (subnormals, ±0, the largest finite values),
    /// with weights up to 2³² − 1, summed in many orders: always the same bits.
    @Test func everyOrderGivesTheSameBits() {
        var rng = TesseraRandom(seed: 2024)
        let length = 64
        let vectors: [[Float]] = (0..<9).map { _ in
            (0..<length).map { _ in
                var value: Float
                repeat { value = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) } while !value.isFinite
                return value
            }
        }
        var weights: [UInt32] = (0..<9).map { _ in UInt32(truncatingIfNeeded: rng.next()) | 1 }
        weights[0] = .max
        let reference = Self.sum(vectors, weights: weights)
        let referenceValues = (0..<length).map { reference.value(at: $0).bitPattern }
        var order = Array(vectors.indices)
        for _ in 0..<20 {
            rng.shuffle(&order)
            let shuffled = Self.sum(order.map { vectors[$0] }, weights: order.map { weights[$0] })
            let values = (0..<length).map { shuffled.value(at: $0).bitPattern }
            #expect(values == referenceValues, "order \(order)")
            #expect(shuffled.mean.map(\.bitPattern) == reference.mean.map(\.bitPattern))
        }
    }

    /// Where a `Double` running sum depends on the order (2⁶⁰ and 2¹¹ are 54 bits apart once
    /// weighted), this sum is exact.
    @Test func cancellationIsExactWhereADoubleSumRounds() {
        let large = Float(sign: .plus, exponent: 60, significand: 1)
        for order in [[large, 2048, -large], [large, -large, 2048], [2048, -large, large]] {
            let sum = Self.sum(order.map { [$0] }, weights: [50, 50, 50])
            #expect(sum.value(at: 0) == 2048 * 50, "order \(order)")
            #expect(sum.mean == [Float(2048.0 / 3)])
        }
    }

    /// Small sums are exact: the mean of simple values is what arithmetic says, and the extremes
    /// (the largest finite value at the largest weight, the smallest subnormal) neither overflow
    /// nor vanish.
    @Test func simpleValuesAndExtremes() {
        let mean = Self.sum([[1, 2, -0.0], [3, 6, 0]], weights: [1, 3]).mean
        #expect(mean == [2.5, 5, 0])
        let largest = Self.sum(
            [[.greatestFiniteMagnitude], [.greatestFiniteMagnitude]], weights: [.max, .max])
        let expected = Double(Float.greatestFiniteMagnitude) * 2 * Double(UInt32.max)
        #expect(abs(largest.value(at: 0) / expected - 1) < 1e-15)
        #expect(largest.mean == [.greatestFiniteMagnitude])
        let tiny = Self.sum(
            [[.leastNonzeroMagnitude], [-.leastNonzeroMagnitude], [.leastNonzeroMagnitude]], weights: [7, 3, 1])
        #expect(tiny.value(at: 0) == Double(Float.leastNonzeroMagnitude) * 5)
        #expect(Self.sum([[4, 4]], weights: [0]).mean == [0, 0])
    }

    /// The coordinator's running sum and the mean of the kept updates agree to the bit.
    @Test func weightedMeanOfUpdatesMatchesTheRunningSum() throws {
        var rng = TesseraRandom(seed: 7)
        let updates = (0..<5).map { index in
            ClientUpdate(
                delta: (0..<33).map { _ in Float.random(in: -1...1, using: &rng) }, sampleCount: 10 + index,
                participant: "site-\(index)")
        }
        var running = PlaintextSum()
        for update in updates.reversed() {
            running.add(update.delta, weight: UInt32(update.sampleCount), from: update.participant!)
        }
        #expect(try Aggregation.weightedMean(updates) == running.mean)
        #expect(running.contributors == updates.map(\.participant!))
    }
}
