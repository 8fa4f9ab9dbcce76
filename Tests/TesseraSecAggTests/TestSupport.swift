import TesseraCrypto
import Testing

@testable import TesseraSecAgg

/// Shared fixtures for the SecAgg tests: rosters, deterministic inputs, signing keys, and an
/// independent model of the abort rule.
enum Fixture {
    static func roster(_ n: Int, offset: UInt32 = 0) -> [UInt32] {
        (1...UInt32(n)).map { $0 * 3 + offset }  // non-contiguous ids on purpose
    }

    static func randomInputs(_ ids: [UInt32], length: Int, seed: UInt64) -> [UInt32: [UInt32]] {
        var generator = DeterministicGenerator(seed: seed)
        var inputs: [UInt32: [UInt32]] = [:]
        for id in ids {
            inputs[id] = (0..<length).map { _ in UInt32(truncatingIfNeeded: generator.next()) }
        }
        return inputs
    }

    static func signingKeys(_ ids: [UInt32], seed: UInt64) -> [UInt32: Ed25519PrivateKey] {
        var generator = DeterministicGenerator(seed: seed)
        var keys: [UInt32: Ed25519PrivateKey] = [:]
        for id in ids {
            let seedBytes = (0..<32).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            keys[id] = try? Ed25519PrivateKey(seed: seedBytes)
        }
        return keys
    }

    static func activeMode(_ keys: [UInt32: Ed25519PrivateKey]) -> SecAggConfiguration.SecurityMode {
        .active(verificationKeys: keys.mapValues(\.publicKey))
    }

    static func wrappingSum(_ vectors: [[UInt32]], length: Int) -> [UInt32] {
        var sum = [UInt32](repeating: 0, count: length)
        for vector in vectors {
            for i in 0..<length { sum[i] = sum[i] &+ vector[i] }
        }
        return sum
    }

    /// Independent model of the server's abort rule (see `SecAggServer`): returns the first
    /// stage whose survivors fall below t globally or in some live neighbourhood, given who
    /// drops before each stage. `nil` means the round must succeed.
    static func expectedAbortStage(
        graph: NeighbourGraph, threshold t: Int, dropouts: SecAggSimulation.DropoutSchedule, active: Bool
    ) -> SecAggStage? {
        var stages: [SecAggStage] = [.advertiseKeys, .shareKeys, .maskedInputCollection]
        if active { stages.append(.consistencyCheck) }
        stages.append(.unmasking)
        var alive = Set(graph.participants)
        var u2: Set<UInt32> = []
        for stage in stages {
            alive = alive.filter { !dropouts.hasDropped($0, by: stage) }
            if stage == .shareKeys { u2 = alive }
            if alive.count < t { return stage }
            let inPlay = stage == .advertiseKeys ? alive : u2
            for u in inPlay {
                let holders = graph.neighbours(of: u) + [u]
                if holders.filter({ alive.contains($0) }).count < t { return stage }
            }
        }
        return nil
    }

    /// Everything that dropped by MaskedInputCollection is not summed.
    static func summed(_ ids: [UInt32], dropouts: SecAggSimulation.DropoutSchedule) -> [UInt32] {
        ids.filter { !dropouts.hasDropped($0, by: .maskedInputCollection) }
    }
}
