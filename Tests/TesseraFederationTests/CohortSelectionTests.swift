import TesseraTensor
import Testing

@testable import TesseraFederation

@Suite struct CohortSelectionTests {
    /// Sites `site-01` … with `samples` training samples of `risk`.
    static func participants(_ count: Int, samples: Int = 10) -> [ParticipantDescriptor] {
        (1...count).map { i in
            ParticipantDescriptor(site: "site-\(i < 10 ? "0" : "")\(i)", datasets: ["risk": samples])
        }
    }

    static func select(
        _ available: [ParticipantDescriptor], _ rule: FederationPlan.Selection, seed: UInt64 = 1
    ) throws(CohortSelectionError) -> CohortSelection {
        var random = TesseraRandom(seed: seed)
        return try CohortSelection.select(from: available, dataset: "risk", rule: rule, random: &random)
    }

    @Test("the cohort's size follows the rule: fraction, minimum, maximum and over-selection")
    func sizes() throws {
        let ten = Self.participants(10)
        let all = try Self.select(ten, .init(fraction: 1, minimum: 2))
        #expect(all.cohort == ten.map(\.site) && all.target == 10 && all.eligibleCount == 10)
        let half = try Self.select(ten, .init(fraction: 0.5, minimum: 2))
        #expect(half.cohort.count == 5 && half.target == 5)
        let overSelected = try Self.select(ten, .init(fraction: 0.5, minimum: 2, overSelection: 1.3))
        #expect(overSelected.target == 5 && overSelected.cohort.count == 7)  // ⌈5 · 1.3⌉
        let capped = try Self.select(ten, .init(fraction: 1, minimum: 2, maximum: 3))
        #expect(capped.target == 3 && capped.cohort.count == 3)
        let raisedToMinimum = try Self.select(ten, .init(fraction: 0.1, minimum: 4))
        #expect(raisedToMinimum.target == 4 && raisedToMinimum.cohort.count == 4)
        let overSelectedPastAll = try Self.select(ten, .init(fraction: 1, minimum: 2, overSelection: 2))
        #expect(overSelectedPastAll.cohort.count == 10)
        for selection in [half, overSelected, capped, raisedToMinimum] {
            #expect(
                selection.cohort == selection.cohort.sorted() && Set(selection.cohort).count == selection.cohort.count)
        }
    }

    @Test("only participants with samples of the dataset are eligible, and only they are ever selected")
    func datasetFilter() throws {
        var available = Self.participants(6)
        available.append(ParticipantDescriptor(site: "other-data", datasets: ["imaging": 50]))
        available.append(ParticipantDescriptor(site: "empty", datasets: ["risk": 0]))
        available.append(ParticipantDescriptor(site: "nothing", datasets: [:]))
        let eligible = Set(Self.participants(6).map(\.site))
        #expect(CohortSelection.eligible(available, dataset: "risk").map(\.site) == eligible.sorted())
        for seed in 0..<200 as Range<UInt64> {
            let selection = try Self.select(available, .init(fraction: 0.5, minimum: 2), seed: seed)
            #expect(selection.eligibleCount == 6 && selection.cohort.count == 3)
            #expect(Set(selection.cohort).isSubset(of: eligible), "seed \(seed): \(selection.cohort)")
        }
        let everyone = try Self.select(available, .init(fraction: 1, minimum: 2))
        #expect(everyone.cohort == eligible.sorted())
    }

    @Test("the same generator state gives the same cohort, whatever the participants' order; the draw is uniform")
    func determinism() throws {
        let available = Self.participants(12)
        let rule = FederationPlan.Selection(fraction: 0.25, minimum: 2)
        var seen: [String: Int] = [:]
        for seed in 0..<300 as Range<UInt64> {
            var first = TesseraRandom(seed: seed)
            var second = TesseraRandom(seed: seed)
            let a = try CohortSelection.select(from: available, dataset: "risk", rule: rule, random: &first)
            let b = try CohortSelection.select(from: available.reversed(), dataset: "risk", rule: rule, random: &second)
            #expect(a == b, "seed \(seed)")
            #expect(first == second, "the generator advances the same way")
            for site in a.cohort { seen[site, default: 0] += 1 }
        }
        // 300 draws of 3 of 12: each site is expected 75 times; a site never or always drawn
        // would show a selection that ignores the generator.
        #expect(seen.count == 12)
        #expect(seen.values.allSatisfy { (40...110).contains($0) }, "\(seen)")
    }

    @Test("a fixed generator state selects a fixed cohort (the coordinator's draws are replayable)")
    func pinnedDraw() throws {
        // The generator the coordinator derives for round 1 of an experiment with seed 5.
        var random = TesseraRandom(seed: 5).derived(1 &* 0x9E37_79B9 &+ 1)
        let selection = try CohortSelection.select(
            from: Self.participants(10), dataset: "risk", rule: .init(fraction: 0.4, minimum: 2), random: &random)
        #expect(selection.cohort == ["site-03", "site-05", "site-07", "site-09"])
    }

    @Test("too few eligible participants, or a site listed twice, is an error that says so")
    func errors() throws {
        let tooFew = try #require(throws: CohortSelectionError.self) {
            _ = try Self.select(Self.participants(2), .init(fraction: 1, minimum: 3))
        }
        #expect(tooFew.code == .tooFewEligible)
        #expect(tooFew.description.contains("only 2 participants offer dataset risk; the minimum is 3"), "\(tooFew)")
        // A minimum below 1 still needs one participant.
        let none = try #require(throws: CohortSelectionError.self) {
            _ = try Self.select([], .init(fraction: 1, minimum: 0))
        }
        #expect(none.code == .tooFewEligible)
        let ineligibleOnly = try #require(throws: CohortSelectionError.self) {
            _ = try Self.select([ParticipantDescriptor(site: "x", datasets: ["imaging": 5])], .init(minimum: 1))
        }
        #expect(ineligibleOnly.code == .tooFewEligible)
        let one = try Self.select(Self.participants(1), .init(fraction: 1, minimum: 0))
        #expect(one.cohort == ["site-01"] && one.target == 1)
        let twice = try #require(throws: CohortSelectionError.self) {
            _ = try Self.select(
                Self.participants(3) + [ParticipantDescriptor(site: "site-02", datasets: ["risk": 4])], .init())
        }
        #expect(twice.code == .duplicateSite && twice.description.contains("site-02"))
    }
}
