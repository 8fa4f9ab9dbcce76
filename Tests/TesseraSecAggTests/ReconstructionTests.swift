import PropertyBased
import TesseraCrypto
import Testing

@testable import TesseraSecAgg

@Suite("Batched Shamir reconstruction")
struct ReconstructionTests {
    @Test("Agrees with Shamir.combine on random secrets, thresholds and holder sets")
    func agreesWithCombine() async throws {
        await propertyCheck(count: 60, input: Gen.int(in: 1...40), Gen.int(in: 0...20), Gen.uint64()) {
            threshold, extra, seed in
            var generator = DeterministicGenerator(seed: seed)
            let holders = threshold + extra
            var points = Set<UInt32>()
            while points.count < holders { points.insert(UInt32(1 + generator.next(below: 5000))) }
            let secret = (0..<SecAggProtocol.secretLength).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let shares = try Shamir.split(
                secret: secret, threshold: threshold, points: Array(points), using: &generator)
            var reconstructor = ShamirReconstructor()
            let shuffled = shares.shuffled(using: &generator)
            let batch = reconstructor.reconstruct(shuffled, threshold: threshold, secretLength: secret.count)
            let reference = try Shamir.combine(
                shuffled.sorted { $0.x < $1.x }, threshold: threshold, secretLength: secret.count)
            #expect(batch == secret && reference == secret)
            // The cached coefficients give the same answer for a second secret on the same points.
            let other = secret.map { $0 ^ 0x5a }
            let otherShares = try Shamir.split(
                secret: other, threshold: threshold, points: Array(points), using: &generator)
            #expect(reconstructor.reconstruct(otherShares, threshold: threshold, secretLength: other.count) == other)
            // Too few shares: nothing.
            #expect(
                reconstructor.reconstruct(Array(shares.prefix(threshold - 1)), threshold: threshold, secretLength: 32)
                    == nil)
        }
    }

    @Test("Shares of different secrets are detected like Shamir.combine detects them")
    func mixedShares() throws {
        var generator = DeterministicGenerator(seed: 3)
        let points: [UInt32] = [2, 5, 9, 11]
        let a = try Shamir.split(
            secret: [UInt8](repeating: 0xff, count: 32), threshold: 3, points: points, using: &generator)
        let b = try Shamir.split(
            secret: [UInt8](repeating: 0x01, count: 32), threshold: 3, points: points, using: &generator)
        let mixed = [a[0], b[1], a[2]]
        var reconstructor = ShamirReconstructor()
        let batch = reconstructor.reconstruct(mixed, threshold: 3, secretLength: 32)
        let reference = try? Shamir.combine(mixed, threshold: 3, secretLength: 32)
        #expect(batch == reference)
        #expect(batch == nil, "a random field element fits in 7 bytes with probability 2^-5 per element")
    }
}
