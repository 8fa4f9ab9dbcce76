import Foundation
import PropertyBased
import Testing

@testable import TesseraSecAgg

/// Breadth-first connectivity of the graph restricted to `alive`.
func isConnected(_ graph: NeighbourGraph, alive: Set<UInt32>) -> Bool {
    guard let start = alive.first else { return true }
    var seen: Set<UInt32> = [start]
    var queue = [start]
    while let next = queue.popLast() {
        for neighbour in graph.neighbours(of: next) where alive.contains(neighbour) && !seen.contains(neighbour) {
            seen.insert(neighbour)
            queue.append(neighbour)
        }
    }
    return seen.count == alive.count
}

@Suite("Neighbourhood graphs")
struct GraphTests {
    @Test("Harary graphs are k-regular, symmetric, connected and determined by the seed")
    func hararyProperties() async throws {
        await propertyCheck(count: 60, input: Gen.int(in: 3...80), Gen.int(in: 1...40), Gen.uint64()) {
            n, halfDegree, seedValue in
            let k = 2 * min(halfDegree, (n - 1) / 2)
            let ids = Fixture.roster(n)
            let seed = withUnsafeBytes(of: seedValue) { Array($0) }
            let graph = try NeighbourGraph(participants: ids.shuffled(), kind: .harary(degree: k, seed: seed))
            #expect(graph.participants == ids)
            #expect(graph.degree == k)
            for id in ids {
                let neighbours = graph.neighbours(of: id)
                #expect(neighbours.count == k, "degree of \(id)")
                #expect(Set(neighbours).count == k && !neighbours.contains(id))
                #expect(neighbours == neighbours.sorted())
                for other in neighbours {
                    #expect(graph.neighbours(of: other).contains(id), "symmetry \(id)–\(other)")
                    #expect(graph.areNeighbours(id, other) && graph.areNeighbours(other, id))
                }
                #expect(graph.holders(of: id) == (neighbours + [id]).sorted())
            }
            let edges = ids.reduce(0) { count, a in count + ids.filter { graph.areNeighbours(a, $0) }.count }
            #expect(edges == n * k, "areNeighbours agrees with the adjacency lists")
            #expect(isConnected(graph, alive: Set(ids)))
            let again = try NeighbourGraph(participants: ids, kind: .harary(degree: k, seed: seed))
            #expect(ids.allSatisfy { graph.neighbours(of: $0) == again.neighbours(of: $0) })
        }
    }

    @Test("Different seeds permute the ring differently")
    func seedsMatter() throws {
        let ids = Fixture.roster(50)
        let a = try NeighbourGraph(participants: ids, kind: .harary(degree: 6, seed: [1]))
        let b = try NeighbourGraph(participants: ids, kind: .harary(degree: 6, seed: [2]))
        #expect(ids.contains { a.neighbours(of: $0) != b.neighbours(of: $0) })
        // The permutation is not the identity ring of sorted ids.
        let identityRing = { (index: Int) in
            [-3, -2, -1, 1, 2, 3].map { ids[(index + $0 + ids.count) % ids.count] }.sorted()
        }
        #expect(ids.indices.contains { a.neighbours(of: ids[$0]) != identityRing($0) })
    }

    @Test("The complete graph links everyone")
    func complete() throws {
        let ids = Fixture.roster(9)
        let graph = try NeighbourGraph(participants: ids, kind: .complete)
        #expect(graph.degree == 8)
        for id in ids {
            #expect(graph.neighbours(of: id) == ids.filter { $0 != id })
            #expect(graph.holders(of: id) == ids)
        }
        #expect(graph.neighbours(of: 1000).isEmpty && !graph.areNeighbours(3, 3))
    }

    @Test(
        "Invalid graphs are rejected",
        arguments: [
            ([UInt32](1...10), NeighbourGraph.Kind.harary(degree: 3, seed: [])),
            ([UInt32](1...10), .harary(degree: 10, seed: [])),
            ([UInt32](1...10), .harary(degree: 0, seed: [])),
            ([1, 2, 2, 3], .complete),
            ([0, 1, 2], .complete),
            ([], .complete),
        ])
    func invalid(ids: [UInt32], kind: NeighbourGraph.Kind) {
        let error = #expect(throws: SecAggError.self) { _ = try NeighbourGraph(participants: ids, kind: kind) }
        #expect(error?.code == .invalidConfiguration)
    }

    @Test("Removing random vertices disconnects a Harary graph no more often than the finder's union bound")
    func disconnectionBound() throws {
        let n = 30
        let k = 6
        let removed = 10
        let bound = exp(SecAggParameterFinder.logProbabilityDisconnected(n: n, k: k, removed: removed))
        #expect(bound > 0.05 && bound < 0.2)
        let ids = Fixture.roster(n)
        var generator = DeterministicGenerator(seed: 77)
        var disconnected = 0
        let trials = 1500
        for trial in 0..<trials {
            let graph = try NeighbourGraph(
                participants: ids, kind: .harary(degree: k, seed: [UInt8(trial & 0xff), UInt8(trial >> 8)]))
            var alive = Set(ids)
            while alive.count > n - removed { alive.remove(ids[Int(generator.next(below: UInt64(n)))]) }
            if !isConnected(graph, alive: alive) { disconnected += 1 }
        }
        #expect(Double(disconnected) / Double(trials) <= bound, "\(disconnected) of \(trials)")
        // The detector itself works: removing two disjoint runs of k/2 ring neighbours of a vertex's ring does split it.
        let ring = try NeighbourGraph(participants: ids, kind: .harary(degree: 2, seed: [9]))
        var alive = Set(ids)
        let victim = ids[0]
        for neighbour in ring.neighbours(of: victim) { alive.remove(neighbour) }
        #expect(!isConnected(ring, alive: alive))
    }
}

/// An independent re-derivation of the finder's conditions: factorials from a running sum of
/// logarithms (not lgamma), probabilities summed in linear space.
struct IndependentConditions {
    let logFactorial: [Double]

    init(upTo n: Int) {
        var table = [0.0]
        table.reserveCapacity(n + 1)
        for i in 1...max(1, n) { table.append(table[i - 1] + log(Double(i))) }
        logFactorial = table
    }

    func choose(_ n: Int, _ r: Int) -> Double {
        r < 0 || r > n ? -.infinity : logFactorial[n] - logFactorial[r] - logFactorial[n - r]
    }

    func pmf(population: Int, successes: Int, draws: Int, _ x: Int) -> Double {
        exp(choose(successes, x) + choose(population - successes, draws - x) - choose(population, draws))
    }

    func tailAtLeast(population: Int, successes: Int, draws: Int, _ x: Int) -> Double {
        x > draws
            ? 0
            : (max(0, x)...draws).reduce(0) { $0 + pmf(population: population, successes: successes, draws: draws, $1) }
    }

    func tailBelow(population: Int, successes: Int, draws: Int, _ x: Int) -> Double {
        x <= 0
            ? 0
            : (0..<min(x, draws + 1)).reduce(0) {
                $0 + pmf(population: population, successes: successes, draws: draws, $1)
            }
    }

    /// Security and correctness of (k, t) for n clients with A corrupted and D dropped.
    func satisfied(
        n: Int, k: Int, t: Int, corrupted: Int, dropped: Int
    ) -> (connected: Bool, secure: Bool, correct: Bool) {
        let complete = k >= n - 1
        var connected = true
        if !complete && corrupted + dropped >= k {
            let logBound =
                log(Double(n) * Double(n - k - 1) / 2)
                + (logFactorial[corrupted + dropped] - logFactorial[corrupted + dropped - k])
                - (logFactorial[n] - logFactorial[n - k])
            connected = logBound < -41 * M_LN2
        }
        let secure = tailAtLeast(population: n - 1, successes: corrupted, draws: k, t) <= pow(2, -41) / Double(n)
        let survivors = tailBelow(population: n - 1, successes: n - 1 - dropped, draws: k, t - 1)  // P[1 + Y < t]
        let droppedOnes = dropped == 0 ? 0 : tailBelow(population: n - 1, successes: n - dropped, draws: k, t)
        let correct = survivors + droppedOnes <= pow(2, -20) / Double(n)
        return (connected, secure, correct)
    }
}

/// The generator's outputs are part of the round's public contract (every party derives the
/// same graph from the same seed), so its streams are pinned; these values were recorded
/// before the algorithm moved to `TesseraSupport`.
@Suite("Deterministic generator")
struct DeterministicGeneratorTests {
    static func fold(_ values: [UInt64]) -> UInt64 {
        values.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ $1) &* 0x100_0000_01b3 }
    }

    @Test("Integer-seeded streams and derived draws are the pinned ones")
    func integerSeed() {
        var g = DeterministicGenerator(seed: 2024)
        #expect(Self.fold((0..<10_000).map { _ in g.next() }) == 10_877_132_632_170_378_142)
        #expect(Self.fold((0..<10_000).map { i in g.next(below: UInt64(1 + i % 1000)) }) == 10_145_070_711_121_021_580)
        #expect(Self.fold((0..<10_000).map { _ in g.nextUnitInterval().bitPattern }) == 18_054_198_759_926_978_426)
    }

    @Test(
        "Byte-seeded streams are the pinned ones",
        arguments: [
            (0, 14_981_816_711_502_342_933 as UInt64), (1, 15_653_031_362_802_592_656), (8, 3_463_274_694_199_484_872),
            (33, 15_920_751_439_718_439_443),
        ])
    func byteSeed(length: Int, expected: UInt64) {
        let bytes: [UInt8] =
            switch length {
            case 0: []
            case 1: [1]
            case 8: [1, 2, 3, 4, 5, 6, 7, 8]
            default: Array(0..<UInt8(length))
            }
        var g = DeterministicGenerator(seed: bytes)
        #expect(Self.fold((0..<1000).map { _ in g.next() }) == expected)
    }
}

@Suite("SecAgg+ parameter finder")
struct ParameterFinderTests {
    static let rates: [(alpha: Double, delta: Double)] = [
        (0.05, 0.33), (0.33, 0.05), (0.33, 0.33), (0.1, 0.1), (0, 0.2),
    ]

    @Test(
        "Found (k, t) satisfy the security, connectivity and correctness conditions, with minimal t and k",
        arguments: [40, 100, 300, 1000, 3000])
    func conditionsHold(n: Int) throws {
        let check = IndependentConditions(upTo: n)
        for (alpha, delta) in Self.rates {
            let p = try SecAggParameterFinder.find(cohortSize: n, dropoutRate: delta, corruptionRate: alpha)
            let corrupted = Int((alpha * Double(n) + 1e-9).rounded(.down))
            let dropped = Int((delta * Double(n) + 1e-9).rounded(.down))
            #expect(
                p.degree <= n - 1 && p.threshold <= p.degree + 1 && p.threshold >= 2,
                "n \(n) α \(alpha) δ \(delta): \(p)")
            switch p.shape {
            case .complete: #expect(p.degree == n - 1)
            case .harary(let k): #expect(k == p.degree && k % 2 == 0 && k < n - 1)
            }
            let ok = check.satisfied(n: n, k: p.degree, t: p.threshold, corrupted: corrupted, dropped: dropped)
            #expect(ok.connected && ok.secure && ok.correct, "n \(n) α \(alpha) δ \(delta): \(p) → \(ok)")
            #expect(p.log2SecurityFailureProbability <= -40 && p.log2DisconnectionProbability <= -41)
            #expect(p.log2CorrectnessFailureProbability <= -20)
            // t is the least secure threshold (above the floor of 2)…
            if p.threshold > 2 {
                #expect(
                    !check.satisfied(n: n, k: p.degree, t: p.threshold - 1, corrupted: corrupted, dropped: dropped)
                        .secure)
            }
            // …and no smaller even degree admits any threshold.
            if case .harary(let k) = p.shape, k > 2 {
                let smaller = k - 2
                let feasible = (2...(smaller + 1)).contains { t in
                    let c = check.satisfied(n: n, k: smaller, t: t, corrupted: corrupted, dropped: dropped)
                    return c.connected && c.secure && c.correct
                }
                #expect(!feasible, "k = \(smaller) would also work for n \(n) α \(alpha) δ \(delta)")
            }
        }
    }

    @Test("Degrees grow slowly with n and with the adversary's and dropouts' share")
    func monotone() throws {
        for (alpha, delta) in Self.rates {
            let degrees = try [100, 1000, 10_000, 100_000].map {
                try SecAggParameterFinder.find(cohortSize: $0, dropoutRate: delta, corruptionRate: alpha).degree
            }
            #expect(degrees[1] <= degrees[2] && degrees[2] <= degrees[3], "α \(alpha) δ \(delta): \(degrees)")
            #expect(degrees[3] < 1000, "logarithmic, not linear, growth")
        }
        for n in [1000, 10_000] {
            let both = try SecAggParameterFinder.find(cohortSize: n, dropoutRate: 0.33, corruptionRate: 0.33)
            let fewerCorrupt = try SecAggParameterFinder.find(cohortSize: n, dropoutRate: 0.33, corruptionRate: 0.05)
            let fewerDropped = try SecAggParameterFinder.find(cohortSize: n, dropoutRate: 0.05, corruptionRate: 0.33)
            #expect(both.degree >= fewerCorrupt.degree && both.degree >= fewerDropped.degree)
        }
    }

    @Test("Small cohorts fall back to the complete graph; impossible ones are rejected")
    func fallbackAndInfeasible() throws {
        let small = try SecAggParameterFinder.find(cohortSize: 5, dropoutRate: 0.33, corruptionRate: 0.33)
        #expect(small.shape == .complete && small.degree == 4 && small.threshold == 2)
        let error = #expect(throws: SecAggError.self) {
            _ = try SecAggParameterFinder.find(cohortSize: 10, dropoutRate: 0.5, corruptionRate: 0.5)
        }
        #expect(error?.code == .infeasibleParameters)
        #expect(throws: SecAggError.self) {
            _ = try SecAggParameterFinder.find(cohortSize: 100, dropoutRate: 1, corruptionRate: 0)
        }
        #expect(throws: SecAggError.self) {
            _ = try SecAggParameterFinder.find(cohortSize: 1, dropoutRate: 0, corruptionRate: 0)
        }
    }

    @Test("The active-server threshold is higher: 2t > k + 1 + corrupted holders")
    func activeThreshold() throws {
        let passive = try SecAggParameterFinder.find(cohortSize: 1000, dropoutRate: 0.1, corruptionRate: 0.1)
        let active = try SecAggParameterFinder.find(
            cohortSize: 1000, dropoutRate: 0.1, corruptionRate: 0.1, adversary: .activeServer)
        #expect(active.threshold > passive.threshold)
        #expect(2 * active.threshold > active.degree + 1)
    }

    @Test("Hypergeometric law: known values and normalisation")
    func hypergeometric() {
        let law = Hypergeometric(population: 10, successes: 4, draws: 3)
        #expect(abs(exp(law.logPMF(1)) - 0.5) < 1e-12)  // C(4,1)·C(6,2)/C(10,3) = 60/120
        let upper = law.logUpperTails()
        let lower = law.logLowerTails()
        #expect(abs(exp(upper[0]) - 1) < 1e-12 && upper[4] == -.infinity)
        #expect(abs(exp(lower[3]) - 1) < 1e-12)
        for x in 0...3 { #expect(abs(exp(lower[x]) + (x + 1 <= 3 ? exp(upper[x + 1]) : 0) - 1) < 1e-12) }
    }

    @Test("The finder's table for the benchmark cohorts is stable", arguments: [100, 1000, 10_000, 1_000_000])
    func table(n: Int) throws {
        for (alpha, delta) in [(0.05, 0.33), (0.33, 0.05), (0.33, 0.33)] {
            let p = try SecAggParameterFinder.find(cohortSize: n, dropoutRate: delta, corruptionRate: alpha)
            #expect(p.degree < 600 && p.threshold <= p.degree + 1)
            if n >= 1000 { #expect(p.shape != .complete, "n = \(n) should use a sparse graph") }
        }
    }
}
