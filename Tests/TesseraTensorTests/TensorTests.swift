import Testing

@testable import TesseraTensor

@Suite struct TensorBasics {
    @Test func reshapeSharesElementsAndInfersDimension() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let r = t.reshaped([3, -1])
        #expect(r.shape == [3, 2])
        #expect(r.scalars == t.scalars)
    }

    @Test func validatingInitializerRejectsCountMismatch() {
        #expect(throws: TensorError.self) { try Tensor(validating: [2, 2], scalars: [1, 2, 3]) }
        #expect(throws: TensorError.self) { try Tensor(validating: [-1, 2], scalars: []) }
    }

    @Test func transposeMatchesIndexing() {
        var rng = TesseraRandom(seed: 3)
        let t = Tensor.randomUniform([37, 45], using: &rng)
        let tt = t.transposed()
        #expect(tt.shape == [45, 37])
        for (r, c) in [(0, 0), (3, 44), (36, 7), (20, 20)] {
            #expect(tt[c, r] == t[r, c])
        }
    }

    @Test func copyOnWriteKeepsValueSemantics() {
        let a = Tensor.ones([4])
        var b = a
        b[2] = 5
        #expect(a.scalars == [1, 1, 1, 1])
        #expect(b.scalars == [1, 1, 5, 1])
    }

    @Test func resizeKeepsAllocationForSameCount() {
        var t = Tensor.zeros([4, 6])
        let before = t.withUnsafeBufferPointer { $0.baseAddress }
        t.resize(to: [6, 4])
        let after = t.withUnsafeBufferPointer { $0.baseAddress }
        #expect(before == after)
        #expect(t.shape == [6, 4])
    }

    @Test func elementwiseAndReductions() {
        let a = Tensor(rows: [[1, -2, 3], [4, 5, -6]])
        let b = Tensor(rows: [[1, 1, 1], [2, 2, 2]])
        #expect((a + b).scalars == [2, -1, 4, 6, 7, -4])
        #expect((a - b).scalars == [0, -3, 2, 2, 3, -8])
        #expect((a * b).scalars == [1, -2, 3, 8, 10, -12])
        #expect((a / b).scalars == [1, -2, 3, 2, 2.5, -3])
        #expect((a * 2).scalars == [2, -4, 6, 8, 10, -12])
        #expect(a.relu().scalars == [1, 0, 3, 4, 5, 0])
        #expect(a.sum() == 5)
        #expect(a.sum(alongAxis: 0).scalars == [5, 3, -3])
        #expect(a.sum(alongAxis: 1).scalars == [2, 3])
        #expect(a.maxValue() == 5)
        #expect(a.minValue() == -6)
        #expect(a.argmax() == [2, 1])
        #expect(Tensor([3, 9, 9, 1]).argmax() == [1])
        #expect(a.clamped(to: -1, 1).scalars == [1, -1, 1, 1, 1, -1])
    }

    @Test func blasLevelOneHelpers() {
        var x = Tensor([3, 4])
        #expect(x.norm == 5)
        #expect(x.dot(Tensor([1, 2])) == 11)
        x.addScaled(Tensor([1, 1]), alpha: 2)
        #expect(x.scalars == [5, 6])
        x.scale(by: 0.5)
        #expect(x.scalars == [2.5, 3])
    }

    /// Every transpose combination of `matmul` against a naive triple loop.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulMatchesNaiveProduct(transposeA: Bool, transposeB: Bool) {
        var rng = TesseraRandom(seed: 11)
        let (m, n, k) = (7, 5, 9)
        let a = Tensor.randomNormal(transposeA ? [k, m] : [m, k], using: &rng)
        let b = Tensor.randomNormal(transposeB ? [n, k] : [k, n], using: &rng)
        let c = Tensor.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
        #expect(c.shape == [m, n])
        for i in 0..<m {
            for j in 0..<n {
                var expected: Float = 0
                for p in 0..<k {
                    let av = transposeA ? a[p, i] : a[i, p]
                    let bv = transposeB ? b[j, p] : b[p, j]
                    expected += av * bv
                }
                #expect(abs(c[i, j] - expected) < 1e-4)
            }
        }
    }
}

@Suite struct RandomGenerator {
    @Test func sameSeedSameStreamDifferentSeedDifferentStream() {
        var a = TesseraRandom(seed: 42)
        var b = TesseraRandom(seed: 42)
        var c = TesseraRandom(seed: 43)
        let sa = (0..<16).map { _ in a.next() }
        #expect(sa == (0..<16).map { _ in b.next() })
        #expect(sa != (0..<16).map { _ in c.next() })
    }

    /// Reference values of xoshiro256** seeded by SplitMix64(0), computed independently
    /// (see Scripts/xoshiro_reference.py). Pins the documented algorithm: a change here
    /// silently changes every seeded experiment.
    @Test func matchesReferenceStream() {
        var rng = TesseraRandom(seed: 0)
        let first = (0..<3).map { _ in rng.next() }
        #expect(first == XoshiroReference.seed0FirstThree)
    }

    /// Every derived draw, pinned over long streams (seed 2024) before the generator moved to
    /// `TesseraSupport`: seeded experiments depend on these exact sequences.
    @Test func derivedDrawsReproduceThePinnedStreams() {
        func fold(_ values: [UInt64]) -> UInt64 {
            values.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ $1) &* 0x100_0000_01b3 }
        }
        var r = TesseraRandom(seed: 2024)
        #expect(fold((0..<10_000).map { _ in r.next() }) == 10_877_132_632_170_378_142)
        #expect(fold((0..<10_000).map { _ in UInt64(r.nextFloat().bitPattern) }) == 8_191_201_173_856_405_793)
        #expect(fold((0..<10_001).map { _ in UInt64(r.nextNormal().bitPattern) }) == 18_358_492_145_717_409_057)
        #expect(fold((0..<10_000).map { i in UInt64(r.nextInt(below: 1 + i % 97)) }) == 14_211_360_461_944_198_558)
        var derived = r.derived(7)
        #expect(fold((0..<1_000).map { _ in derived.next() }) == 609_686_479_494_746_270)
        var deck = Array(0..<52)
        r.shuffle(&deck)
        #expect(
            deck == [
                18, 26, 3, 12, 27, 19, 36, 40, 1, 16, 10, 11, 51, 5, 35, 37, 48, 33, 46, 20, 44, 49, 13, 42, 50, 6,
                24, 38, 14, 0, 2, 28, 22, 43, 32, 39, 47, 23, 45, 4, 21, 31, 30, 41, 9, 15, 7, 34, 25, 29, 17, 8,
            ])
        #expect(fold((0..<1000).map { _ in UInt64(r.nextFloat(in: -2, 3).bitPattern) }) == 12_923_936_504_487_228_456)
    }

    @Test func uniformAndNormalMoments() {
        var rng = TesseraRandom(seed: 5)
        let n = 200_000
        var sum = 0.0
        var sumSq = 0.0
        var uniformSum = 0.0
        for _ in 0..<n {
            let z = Double(rng.nextNormal())
            sum += z
            sumSq += z * z
            let u = rng.nextFloat()
            #expect(u >= 0 && u < 1)
            uniformSum += Double(u)
        }
        #expect(abs(sum / Double(n)) < 0.01)
        #expect(abs(sumSq / Double(n) - 1) < 0.02)
        #expect(abs(uniformSum / Double(n) - 0.5) < 0.01)
    }

    @Test func initialisersHaveTheirDocumentedScale() {
        var rng = TesseraRandom(seed: 9)
        let he = Tensor.heNormal([400, 100], fanIn: 100, using: &rng)
        let variance = he.scalars.reduce(0) { $0 + Double($1 * $1) } / Double(he.count)
        #expect(abs(variance - 0.02) < 0.002)
        let glorot = Tensor.glorotUniform([50, 70], fanIn: 50, fanOut: 70, using: &rng)
        let bound = (6.0 / 120.0).squareRoot()
        #expect(glorot.scalars.allSatisfy { abs(Double($0)) <= bound })
        #expect(Double(glorot.maxValue()) > 0.9 * bound)
    }

    @Test func shuffleIsAPermutationAndSeeded() {
        var a = Array(0..<100)
        var b = Array(0..<100)
        var r1 = TesseraRandom(seed: 1)
        var r2 = TesseraRandom(seed: 1)
        r1.shuffle(&a)
        r2.shuffle(&b)
        #expect(a == b)
        #expect(a != Array(0..<100))
        #expect(a.sorted() == Array(0..<100))
    }
}

/// Output of `python3 Scripts/xoshiro_reference.py`.
enum XoshiroReference {
    static let seed0FirstThree: [UInt64] = [
        11_091_344_671_253_066_420, 13_793_997_310_169_335_082, 1_900_383_378_846_508_768,
    ]
}
