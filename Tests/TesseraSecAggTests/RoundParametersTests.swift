import Foundation
import Testing

@testable import TesseraSecAgg

@Suite("A round's graph and threshold")
struct RoundParametersTests {
    /// The coordinator's choice before `roundParameters` existed, kept as the reference for
    /// valid cases: `nil` where the automatic choice found nothing (it then fell back to the
    /// complete graph without saying so) or the request was refused.
    static func previousChoice(
        n: Int, neighbourhood: SecAggNeighbourhood, threshold fixed: SecAggThreshold?, delta: Double, alpha: Double
    ) -> (shape: SecAggParameters.Shape, threshold: Int)? {
        guard n >= 2 else { return nil }
        func tolerant(_ holders: Int) -> Int { max(2, holders - Int((delta * Double(holders)).rounded(.down))) }
        let shape: SecAggParameters.Shape
        var t: Int
        switch neighbourhood {
        case .automatic:
            guard let found = try? SecAggParameterFinder.find(cohortSize: n, dropoutRate: delta, corruptionRate: alpha)
            else { return nil }
            shape = found.shape
            t = found.threshold
        case .complete:
            shape = .complete
            t = tolerant(n)
        case .harary(let degree):
            guard degree < n else { return nil }
            shape = .harary(degree: degree)
            t = tolerant(degree + 1)
        }
        let holders: Int
        switch shape {
        case .complete: holders = n
        case .harary(let degree): holders = degree + 1
        }
        switch fixed {
        case .count(let c)?: t = c
        case .fraction(let f)?: t = Int((f * Double(holders) - 1e-9).rounded(.up))
        case nil: break
        }
        t = min(max(t, 2), holders)
        guard t > Int((alpha * Double(holders)).rounded(.down)) else { return nil }
        return (shape, t)
    }

    @Test("Valid requests get the same graph and threshold as the coordinator chose before; the others are refused")
    func sameAsBefore() throws {
        let neighbourhoods: [SecAggNeighbourhood] = [.automatic, .complete, .harary(degree: 2), .harary(degree: 4)]
        let thresholds: [SecAggThreshold?] = [nil, .count(3), .fraction(0.6), .fraction(0.9)]
        let rates: [(delta: Double, alpha: Double)] = [(0.3, 0.1), (0.1, 0.05), (0.33, 0.33), (0.5, 0.2), (0, 0)]
        var compared = 0
        for n in [2, 3, 4, 5, 6, 10, 25, 100, 1000] {
            for neighbourhood in neighbourhoods {
                for fixed in thresholds {
                    for (delta, alpha) in rates {
                        let previous = Self.previousChoice(
                            n: n, neighbourhood: neighbourhood, threshold: fixed, delta: delta, alpha: alpha)
                        let request = "n \(n) \(neighbourhood) \(String(describing: fixed)) δ \(delta) α \(alpha)"
                        if let previous {
                            let chosen = try SecAggParameterFinder.roundParameters(
                                cohortSize: n, neighbourhood: neighbourhood, threshold: fixed, dropoutRate: delta,
                                corruptionRate: alpha)
                            #expect(
                                chosen.shape == previous.shape && chosen.threshold == previous.threshold, "\(request)")
                            compared += 1
                        } else {
                            #expect(throws: SecAggParameterError.self, "\(request)") {
                                _ = try SecAggParameterFinder.roundParameters(
                                    cohortSize: n, neighbourhood: neighbourhood, threshold: fixed, dropoutRate: delta,
                                    corruptionRate: alpha)
                            }
                        }
                    }
                }
            }
        }
        #expect(compared > 400, "the grid must mostly hold valid requests; compared \(compared)")
    }

    @Test("Known choices: the finder's for automatic, the dropout-tolerant threshold otherwise, a fixed one over both")
    func knownChoices() throws {
        let small = try SecAggParameterFinder.roundParameters(
            cohortSize: 5, neighbourhood: .automatic, threshold: nil, dropoutRate: 0.33, corruptionRate: 0.33)
        #expect(small == SecAggRoundParameters(shape: .complete, threshold: 2, holders: 5))
        let complete = try SecAggParameterFinder.roundParameters(
            cohortSize: 10, neighbourhood: .complete, threshold: nil, dropoutRate: 0.3, corruptionRate: 0.1)
        #expect(complete == SecAggRoundParameters(shape: .complete, threshold: 7, holders: 10))
        let fraction = try SecAggParameterFinder.roundParameters(
            cohortSize: 6, neighbourhood: .complete, threshold: .fraction(0.6), dropoutRate: 0.3, corruptionRate: 0.1)
        #expect(fraction.threshold == 4)  // ⌈0.6 · 6⌉
        let harary = try SecAggParameterFinder.roundParameters(
            cohortSize: 10, neighbourhood: .harary(degree: 4), threshold: nil, dropoutRate: 0.3, corruptionRate: 0.1)
        #expect(harary == SecAggRoundParameters(shape: .harary(degree: 4), threshold: 4, holders: 5))
        #expect(harary.graphKind(seed: [7]) == .harary(degree: 4, seed: [7]))
        let large = try SecAggParameterFinder.roundParameters(
            cohortSize: 1000, neighbourhood: .automatic, threshold: nil, dropoutRate: 0.1, corruptionRate: 0.05)
        let found = try SecAggParameterFinder.find(cohortSize: 1000, dropoutRate: 0.1, corruptionRate: 0.05)
        #expect(large.shape == found.shape && large.threshold == found.threshold && large.holders == found.degree + 1)
    }

    @Test("No parameters for the rates: a clear error naming the cohort size and the rates, not the complete graph")
    func noSafeParameters() throws {
        // Two participants, one of whom may drop: no threshold of at least 2 survives that.
        let error = try #require(throws: SecAggParameterError.self) {
            _ = try SecAggParameterFinder.roundParameters(
                cohortSize: 2, neighbourhood: .automatic, threshold: nil, dropoutRate: 0.5, corruptionRate: 0.1)
        }
        #expect(error.code == .noSafeParameters)
        #expect(error.cohortSize == 2 && error.dropoutRate == 0.5 && error.corruptionRate == 0.1)
        #expect(error.description.contains("cohort of 2"), "\(error)")
        #expect(error.description.contains("dropout rate 0.5") && error.description.contains("corruption rate 0.1"))
        // A fixed threshold does not stand in for the missing graph either.
        let fixed = try #require(throws: SecAggParameterError.self) {
            _ = try SecAggParameterFinder.roundParameters(
                cohortSize: 10, neighbourhood: .automatic, threshold: .count(6), dropoutRate: 0.5, corruptionRate: 0.5)
        }
        #expect(fixed.code == .noSafeParameters)
    }

    @Test("Refused requests name what is wrong")
    func refusals() throws {
        func code(
            _ n: Int, _ neighbourhood: SecAggNeighbourhood, _ fixed: SecAggThreshold? = nil, delta: Double = 0.3,
            alpha: Double = 0.1
        ) -> SecAggParameterError.Code? {
            do {
                _ = try SecAggParameterFinder.roundParameters(
                    cohortSize: n, neighbourhood: neighbourhood, threshold: fixed, dropoutRate: delta,
                    corruptionRate: alpha)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code(1, .complete) == .tooFewParticipants)
        #expect(code(0, .automatic) == .tooFewParticipants)
        #expect(code(4, .harary(degree: 4)) == .degreeTooLarge)
        #expect(code(5, .harary(degree: 4)) == nil)
        #expect(code(10, .automatic, delta: 1) == .invalidRates)
        #expect(code(10, .automatic, alpha: -0.1) == .invalidRates)
        // Half the holders may be corrupted: a threshold of 3 would let them reconstruct.
        #expect(code(10, .complete, .count(3), alpha: 0.5) == .thresholdTooLow)
        #expect(code(10, .complete, .count(6), alpha: 0.5) == nil)
    }
}
