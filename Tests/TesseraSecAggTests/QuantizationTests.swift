import Foundation
import PropertyBased
import TesseraCrypto
import Testing

@testable import TesseraSecAgg

@Suite("Quantization codec")
struct QuantizationTests {
    @Test("Stochastic rounding is unbiased: the mean of many roundings converges to the value")
    func unbiased() async throws {
        let codec = try QuantizationCodec(clip: 1, bits: 6, maxWeight: 1, maxInputs: 10)
        await propertyCheck(count: 40, input: Gen.int(in: -1000...1000), Gen.uint64()) { thousandths, seed in
            let value = Float(thousandths) / 1000
            var generator = DeterministicGenerator(seed: seed)
            let trials = 4000
            var total = 0.0
            for _ in 0..<trials {
                let word = try codec.encode([value], weight: 1, using: &generator)[0]
                total += Double(Int32(bitPattern: word))
            }
            let mean = total / Double(trials) * codec.step
            // One rounding has standard deviation ≤ Δ/2, so the mean's is ≤ Δ/(2√N); allow 5σ.
            let tolerance = 5 * codec.step / (2 * Double(trials).squareRoot())
            #expect(abs(mean - Double(value)) <= tolerance, "mean \(mean) vs \(value)")
        }
    }

    @Test("Decoding the sum of quantized inputs gives the clipped weighted mean within the documented bound")
    func weightedMeanWithinBound() async throws {
        await propertyCheck(
            count: 60, input: Gen.int(in: 1...30), Gen.int(in: 2...22), Gen.uint32(in: 1...100_000), Gen.uint64()
        ) { inputs, bits, maxWeight, seed in
            guard let codec = try? QuantizationCodec(clip: 0.75, bits: bits, maxWeight: maxWeight, maxInputs: inputs)
            else {
                // Only combinations that cannot fit may be rejected.
                #expect(
                    UInt64(inputs) * ((UInt64(1) << UInt64(bits - 1)) - 1) > UInt64(Int32.max)
                        || UInt64(inputs) * UInt64(maxWeight) > UInt64(UInt32.max))
                return
            }
            var generator = DeterministicGenerator(seed: seed)
            let dimension = 5
            var sum = [UInt32](repeating: 0, count: dimension + 1)
            var numerator = [Double](repeating: 0, count: dimension)
            var totalWeight: UInt64 = 0
            for _ in 0..<inputs {
                // Some values lie beyond ±clip.
                let values = (0..<dimension).map { _ in Float(generator.nextUnitInterval() * 3 - 1.5) }
                let weight = UInt32(generator.next(below: UInt64(maxWeight))) + 1
                let encoded = try codec.encode(values, weight: weight, using: &generator)
                for i in sum.indices { sum[i] = sum[i] &+ encoded[i] }
                for i in 0..<dimension { numerator[i] += Double(weight) * min(max(Double(values[i]), -0.75), 0.75) }
                totalWeight += UInt64(weight)
            }
            let decoded = try codec.decode(sum: sum, inputCount: inputs)
            #expect(decoded.totalWeight == totalWeight)
            let bound = codec.errorBound(inputCount: inputs, totalWeight: totalWeight)
            for i in 0..<dimension {
                let exact = numerator[i] / Double(totalWeight)
                #expect(
                    abs(decoded.mean[i] - exact) <= bound * (1 + 1e-9) + 1e-12,
                    "coordinate \(i): \(decoded.mean[i]) vs \(exact), bound \(bound)")
            }
        }
    }

    @Test("Configurations that can overflow 32 bits are rejected at configuration time")
    func overflowAtConfiguration() {
        // 1000 inputs of 24-bit values: 1000 · (2^23 − 1) > 2^31.
        let values = #expect(throws: SecAggError.self) {
            _ = try QuantizationCodec(clip: 1, bits: 24, maxWeight: 1, maxInputs: 1000)
        }
        #expect(values?.code == .quantizationOverflow)
        // 1000 weights of 2^23: the weight coordinate itself overflows.
        let weights = #expect(throws: SecAggError.self) {
            _ = try QuantizationCodec(clip: 1, bits: 8, maxWeight: 1 << 23, maxInputs: 1000)
        }
        #expect(weights?.code == .quantizationOverflow)
        // The largest cohort that fits is accepted, one more is not.
        #expect(throws: Never.self) { _ = try QuantizationCodec(clip: 1, bits: 16, maxWeight: 1, maxInputs: 65538) }
        #expect(throws: SecAggError.self) {
            _ = try QuantizationCodec(clip: 1, bits: 16, maxWeight: 1, maxInputs: 65539)
        }
        for bad in [0.0, -1.0, .nan, .infinity] {
            let error = #expect(throws: SecAggError.self) {
                _ = try QuantizationCodec(clip: bad, bits: 8, maxWeight: 1, maxInputs: 1)
            }
            #expect(error?.code == .invalidConfiguration)
        }
        #expect(throws: SecAggError.self) { _ = try QuantizationCodec(clip: 1, bits: 1, maxWeight: 1, maxInputs: 1) }
        #expect(throws: SecAggError.self) { _ = try QuantizationCodec(clip: 1, bits: 33, maxWeight: 1, maxInputs: 1) }
    }

    @Test("Decoding checks the number of inputs actually summed, not only the configured cohort")
    func overflowAtDecode() throws {
        let codec = try QuantizationCodec(clip: 1, bits: 16, maxWeight: 1, maxInputs: 100)
        #expect(codec.capacity == 65538)
        let error = #expect(throws: SecAggError.self) {
            _ = try codec.decode(sum: [0, 70_000], inputCount: 70_000)
        }
        #expect(error?.code == .quantizationOverflow)
        #expect(error?.message.contains("70000") == true)
    }

    @Test("Decoding rejects sums that honest inputs cannot produce")
    func corruptSums() throws {
        let codec = try QuantizationCodec(clip: 1, bits: 8, maxWeight: 10, maxInputs: 4)
        // Coordinate beyond 4 · 127.
        let range = #expect(throws: SecAggError.self) { _ = try codec.decode(sum: [600, 4], inputCount: 4) }
        #expect(range?.code == .valueOutOfRange)
        // Total weight above 4 · 10.
        let weight = #expect(throws: SecAggError.self) { _ = try codec.decode(sum: [0, 41], inputCount: 4) }
        #expect(weight?.code == .valueOutOfRange)
        // Zero total weight: no mean.
        let zero = #expect(throws: SecAggError.self) { _ = try codec.decode(sum: [0, 0], inputCount: 4) }
        #expect(zero?.code == .valueOutOfRange)
        #expect(throws: SecAggError.self) { _ = try codec.decode(sum: [], inputCount: 1) }
    }

    @Test("Encoding rejects weights above the maximum and non-finite values")
    func encodeValidation() throws {
        let codec = try QuantizationCodec(clip: 1, bits: 8, maxWeight: 10, maxInputs: 4)
        var generator = DeterministicGenerator(seed: 1)
        let weight = #expect(throws: SecAggError.self) { _ = try codec.encode([0.5], weight: 11, using: &generator) }
        #expect(weight?.code == .valueOutOfRange)
        let nan = #expect(throws: SecAggError.self) { _ = try codec.encode([0.5, .nan], weight: 1, using: &generator) }
        #expect(nan?.code == .valueOutOfRange)
        // Exact grid values and clipping are deterministic.
        let encoded = try codec.encode([1, -1, 5, -5, 0], weight: 10, using: &generator)
        #expect(encoded == [127, UInt32(bitPattern: -127), 127, UInt32(bitPattern: -127), 0, 10])
    }

    @Test("With the system CSPRNG (drawn in blocks), every coordinate rounds to a neighbour of its value, without bias")
    func secureRandomEncoding() throws {
        let codec = try QuantizationCodec(clip: 1, bits: 16, maxWeight: 4, maxInputs: 10)
        // 3 blocks of 4096 and a partial one; v = (w/W)·x/Δ with w = 2, W = 4.
        let count = 3 * 4096 + 1234
        let values: [Float] = (0..<count).map { Float(sin(Double($0) * 0.61)) * 0.9 }
        var generator = SecureRandomGenerator()
        let encoded = try codec.encode(values, weight: 2, using: &generator)
        #expect(encoded.count == count + 1)
        #expect(encoded[count] == 2)
        var excess = 0.0
        for (index, value) in values.enumerated() {
            let v = 0.5 * Double(value) / codec.step
            let q = Double(Int32(bitPattern: encoded[index]))
            #expect(q == v.rounded(.down) || q == v.rounded(.down) + 1, "coordinate \(index): \(q) for \(v)")
            excess += q - v
        }
        // Each rounding's error has mean 0 and standard deviation ≤ 1/2: the mean error over
        // `count` coordinates is within 5σ = 5/(2√count) unless the rounding is biased.
        #expect(abs(excess / Double(count)) <= 5 / (2 * Double(count).squareRoot()))
        // Grid values need no randomness.
        let grid = try codec.encode([1, -1, 0, 5], weight: 4, using: &generator)
        #expect(grid == [32767, UInt32(bitPattern: -32767), 0, 32767, 4])
        // A non-finite value in a later block is reported at its index.
        var bad = values
        bad[2 * 4096 + 7] = .infinity
        let error = #expect(throws: SecAggError.self) { _ = try codec.encode(bad, weight: 2, using: &generator) }
        #expect(error?.message.contains("Coordinate \(2 * 4096 + 7) ") == true)
    }
}
