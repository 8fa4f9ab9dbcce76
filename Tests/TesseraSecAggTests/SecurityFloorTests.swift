import Testing

@testable import TesseraSecAgg

/// A share holder checks a threshold it did not choose against the security bound alone.
@Suite("The least secure threshold for a given graph")
struct SecurityFloorTests {
    @Test("On the shape the finder chose, the floor is the finder's threshold, and the graph stays connected")
    func agreesWithTheFinder() throws {
        var compared = 0
        for n in [2, 3, 4, 5, 6, 7, 9, 10, 12, 16, 25, 40, 64, 100, 250, 600] {
            for delta in [0, 0.05, 0.1, 0.2, 0.3] {
                for alpha in [0, 0.05, 0.1, 0.2, 0.33] {
                    for adversary in [SecAggAdversary.semiHonest, .activeServer] {
                        guard
                            let found = try? SecAggParameterFinder.find(
                                cohortSize: n, dropoutRate: delta, corruptionRate: alpha, adversary: adversary)
                        else { continue }
                        let floor = try SecAggParameterFinder.minimumSecureThreshold(
                            cohortSize: n, shape: found.shape, corruptionRate: alpha, adversary: adversary)
                        #expect(floor == found.threshold, "n \(n) δ \(delta) α \(alpha) \(adversary): \(found)")
                        #expect(
                            SecAggParameterFinder.keepsHonestSurvivorsConnected(
                                cohortSize: n, shape: found.shape, dropoutRate: delta, corruptionRate: alpha))
                        compared += 1
                    }
                }
            }
        }
        #expect(compared > 500)
    }

    @Test("On the complete graph: one more than the corrupted clients, or 2t > n + corrupted against an active server")
    func completeGraphClosedForm() throws {
        func floor(_ n: Int, _ alpha: Double, _ adversary: SecAggAdversary) throws -> Int {
            try SecAggParameterFinder.minimumSecureThreshold(
                cohortSize: n, shape: .complete, corruptionRate: alpha, adversary: adversary)
        }
        // The quick start: 5 sites, one of them corrupted.
        #expect(try floor(5, 0.2, .semiHonest) == 2)
        #expect(try floor(5, 0.2, .activeServer) == 4)
        // No corrupted client: the floor of 2, and a strict majority against an active server.
        #expect(try floor(4, 0, .semiHonest) == 2)
        #expect(try floor(4, 0, .activeServer) == 3)
        #expect(try floor(5, 0, .activeServer) == 3)
        #expect(try floor(10, 0.1, .activeServer) == 6)
        #expect(try floor(10, 0.3, .semiHonest) == 4)
        #expect(try floor(10, 0.3, .activeServer) == 7)
        // A Harary graph of degree n − 1 is the complete graph.
        #expect(
            try SecAggParameterFinder.minimumSecureThreshold(
                cohortSize: 5, shape: .harary(degree: 4), corruptionRate: 0.2, adversary: .activeServer) == 4)
    }

    @Test("Against an active server the floor always exceeds half of the holders")
    func activeFloorIsAMajority() throws {
        for n in [3, 8, 50, 300] {
            var shapes: [SecAggParameters.Shape] = [.complete]
            shapes += stride(from: 2, to: n, by: 2).map { .harary(degree: $0) }
            for shape in shapes {
                let holders: Int
                switch shape {
                case .complete: holders = n
                case .harary(let k): holders = k + 1
                }
                for alpha in [0, 0.1, 0.4] {
                    let floor = try SecAggParameterFinder.minimumSecureThreshold(
                        cohortSize: n, shape: shape, corruptionRate: alpha, adversary: .activeServer)
                    #expect(floor > holders / 2, "n \(n) \(shape) α \(alpha): \(floor) of \(holders)")
                }
            }
        }
    }

    @Test("More corruption never lowers the floor")
    func monotoneInTheCorruptionRate() throws {
        for (n, shape) in [
            (200, SecAggParameters.Shape.harary(degree: 40)), (30, .complete), (500, .harary(degree: 100)),
        ] {
            for adversary in [SecAggAdversary.semiHonest, .activeServer] {
                var previous = 0
                for alpha in stride(from: 0.0, to: 0.6, by: 0.05) {
                    let floor = try SecAggParameterFinder.minimumSecureThreshold(
                        cohortSize: n, shape: shape, corruptionRate: alpha, adversary: adversary)
                    #expect(floor >= previous, "n \(n) \(shape) \(adversary) α \(alpha)")
                    previous = floor
                }
            }
        }
    }

    @Test("Requests no floor exists for are refused")
    func invalidRequests() {
        let cases: [(Int, SecAggParameters.Shape, Double)] = [
            (1, .complete, 0.1), (5, .complete, 1), (5, .complete, -0.1), (5, .complete, .nan),
            (10, .harary(degree: 3), 0.1), (10, .harary(degree: 0), 0.1), (10, .harary(degree: 10), 0.1),
        ]
        for (n, shape, alpha) in cases {
            #expect(throws: SecAggError.self, "n \(n) \(shape) α \(alpha)") {
                try SecAggParameterFinder.minimumSecureThreshold(
                    cohortSize: n, shape: shape, corruptionRate: alpha, adversary: .activeServer)
            }
        }
    }

    @Test("A sparse Harary graph may split the honest survivors; the complete graph never does")
    func connectivity() throws {
        func connected(_ n: Int, _ shape: SecAggParameters.Shape, _ delta: Double, _ alpha: Double) -> Bool {
            SecAggParameterFinder.keepsHonestSurvivorsConnected(
                cohortSize: n, shape: shape, dropoutRate: delta, corruptionRate: alpha)
        }
        #expect(connected(1000, .complete, 0.5, 0.4))
        #expect(!connected(100, .harary(degree: 2), 0.1, 0.1))
        // Fewer clients removed than the degree cannot disconnect the graph.
        #expect(connected(100, .harary(degree: 2), 0, 0))
        let found = try SecAggParameterFinder.find(cohortSize: 1000, dropoutRate: 0.1, corruptionRate: 0.1)
        guard case .harary(let k) = found.shape else {
            Issue.record("expected a Harary graph for 1,000 clients, got \(found)")
            return
        }
        #expect(connected(1000, .harary(degree: k), 0.1, 0.1))
        // More dropouts than planned for can make the finder's graph too sparse.
        #expect(!connected(1000, .harary(degree: k), 0.5, 0.1))
    }
}
