import TesseraCrypto
import Testing

@testable import TesseraSecAgg

/// The server's parallel mask removal gives the same sum however the work is cut: by tasks
/// with private accumulators, or by ranges of the vector in place (large vectors on many cores).
@Suite("Parallel mask removal")
struct MaskRemovalTests {
    /// Self-mask seeds and dropped-participant pairs with both signs, and the sum they give
    /// when every mask is applied one at a time.
    static func tasksAndExpectedSum(
        count: Int, length: Int, roundID: UInt64
    ) throws -> ([SecAggParallel.MaskTask], start: [UInt32], expected: [UInt32]) {
        var generator = DeterministicGenerator(seed: 0x5EED_0F_4A5C)
        let start = (0..<length).map { _ in UInt32(truncatingIfNeeded: generator.next()) }
        var expected = start
        var tasks: [SecAggParallel.MaskTask] = []
        for index in 0..<count {
            let sign: MaskPRG.Sign = index % 3 == 0 ? .minus : .plus
            let seed: SecretBytes
            if index % 2 == 0 {
                seed = SecretBytes((0..<32).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
                tasks.append(.seed(seed, sign))
            } else {
                let own = X25519PrivateKey(using: &generator)
                let peer = X25519PrivateKey(using: &generator).publicKey
                let (ownID, peerID) = (UInt32(index), UInt32(1000 + index))
                seed = try SecAggProtocol.maskSeed(own: own, peer: peer, roundID: roundID, ownID: ownID, peerID: peerID)
                tasks.append(.pair(own, peer, ownID: ownID, peerID: peerID, sign))
            }
            try expected.withUnsafeMutableBufferPointer { words in
                switch sign {
                case .plus: try MaskPRG(seed: seed).add(into: words)
                case .minus: try MaskPRG(seed: seed).subtract(from: words)
                }
            }
        }
        return (tasks, start, expected)
    }

    @Test("Cut by tasks or by ranges, on one worker or several, the sum is the same")
    func everyCutGivesTheSameSum() throws {
        // Long enough to be cut into 3 ranges (not a multiple of the range or the AES block).
        let length = 3 * SecAggParallel.minimumRangeWords + 123
        let roundID: UInt64 = 42
        let (tasks, start, expected) = try Self.tasksAndExpectedSum(count: 40, length: length, roundID: roundID)
        for (workers, budget) in [(1, Int.max), (3, Int.max), (3, 0), (2, 0), (8, 0)] {
            var sum = start
            try SecAggParallel.removeMasks(
                tasks, from: &sum, roundID: roundID, workerCount: workers, scratchBudgetBytes: budget)
            // Counted, not compared: a failure should not print two 200k-word vectors.
            let wrong = zip(sum, expected).filter { $0 != $1 }.count
            #expect(wrong == 0, "workers \(workers), scratch budget \(budget): \(wrong) of \(length) words differ")
        }
    }

    @Test("Private accumulators beyond one vector and the budget make the vector be cut")
    func theCutFollowsTheScratchBudget() {
        let d = 1 << 20
        #expect(SecAggParallel.cutsByRanges(workers: 2, length: d, scratchBudgetBytes: 0) == false)  // one extra vector
        #expect(SecAggParallel.cutsByRanges(workers: 3, length: d, scratchBudgetBytes: 0) == true)
        #expect(SecAggParallel.cutsByRanges(workers: 32, length: d, scratchBudgetBytes: 64 << 20) == true)  // 124 MB
        #expect(SecAggParallel.cutsByRanges(workers: 16, length: d, scratchBudgetBytes: 64 << 20) == false)  // 60 MB
    }
}
