import TesseraPrivacy
import TesseraSupport
import Testing

private func randomVector(_ count: Int, seed: UInt64) -> [Float] {
    var generator = Xoshiro256StarStar(seed: seed)
    return (0..<count).map { _ in Float.random(in: -2...2, using: &generator) }
}

private func l2(_ values: [Double]) -> Double { values.reduce(0) { $0 + $1 * $1 }.squareRoot() }

@Suite struct RandomizedHadamardTests {
    @Test(arguments: [1, 5, 64, 1000, 4097])
    func rotationKeepsTheNormAndInverts(dimension: Int) throws {
        let rotation = try RandomizedHadamard(dimension: dimension, seed: 77)
        let x = randomVector(dimension, seed: UInt64(dimension))
        let rotated = rotation.rotate(x)
        #expect(rotated.count == rotation.paddedDimension)
        #expect(rotation.paddedDimension >= dimension && rotation.paddedDimension < 2 * dimension + 1)
        let norm = Clipping.norm(x)
        #expect(abs(l2(rotated) - norm) <= 1e-12 * norm)
        let back = rotation.inverse(rotated)
        #expect(back.count == dimension)
        let error = zip(back, x).map { abs($0 - Double($1)) }.max() ?? 0
        #expect(error <= 1e-12 * norm)
    }

    /// The sign rule is a wire contract: rotate must equal H·D·x/√n computed naively, with the
    /// i-th sign −1 when bit i % 64 of the (i / 64)-th Xoshiro output is set.
    @Test func rotationMatchesTheNaiveMatrixProductAndTheDocumentedSigns() throws {
        let dimension = 100
        let rotation = try RandomizedHadamard(dimension: dimension, seed: 2024)
        let n = rotation.paddedDimension
        #expect(n == 128)
        let x = randomVector(dimension, seed: 5)
        var signs = Xoshiro256StarStar(seed: 2024)
        var signWords: [UInt64] = []
        for _ in 0..<(n / 64) { signWords.append(signs.next()) }
        let signed = (0..<n).map { i -> Double in
            let value = i < dimension ? Double(x[i]) : 0
            return (signWords[i / 64] >> UInt64(i % 64)) & 1 == 1 ? -value : value
        }
        let expected = (0..<n).map { row -> Double in
            var sum = 0.0
            for column in 0..<n {
                // H[row][column] = (−1)^popcount(row & column).
                sum += (row & column).nonzeroBitCount % 2 == 0 ? signed[column] : -signed[column]
            }
            return sum / Double(n).squareRoot()
        }
        let rotated = rotation.rotate(x)
        let error = zip(rotated, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(error < 1e-12)
    }

    @Test func theSameSeedRotatesAlikeAndAnotherSeedDoesNot() throws {
        let x = randomVector(300, seed: 9)
        let first = try RandomizedHadamard(dimension: 300, seed: 1).rotate(x)
        let again = try RandomizedHadamard(dimension: 300, seed: 1).rotate(x)
        let other = try RandomizedHadamard(dimension: 300, seed: 2).rotate(x)
        #expect(first == again)
        let differing = zip(first, other).filter { abs($0 - $1) > 1e-9 }.count
        #expect(differing > 200)
    }

    /// Flatness, the reason to rotate: a vector with all its mass on one coordinate comes out
    /// with every coordinate at C/√n.
    @Test func aSpikeIsSpreadEvenly() throws {
        let rotation = try RandomizedHadamard(dimension: 256, seed: 3)
        var spike = [Float](repeating: 0, count: 256)
        spike[17] = 1
        let rotated = rotation.rotate(spike)
        #expect(rotated.allSatisfy { abs(abs($0) - 1.0 / 16) < 1e-15 })
    }

    @Test func dimensionsOutOfRangeAreRefused() {
        for dimension in [0, -1, RandomizedHadamard.largestDimension + 1] {
            #expect(throws: PrivacyError.self) { try RandomizedHadamard(dimension: dimension, seed: 0) }
        }
    }
}
