public import TesseraTensor

/// A round's cohort, chosen from the connected participants by ``select(from:dataset:rule:random:)``.
public struct CohortSelection: Sendable, Hashable {
    /// The selected sites, sorted: protocol ids are positions in this order, from 1.
    public var cohort: [SiteID]
    /// The contributions the round wants (``FederationPlan/Selection/sizes(eligible:)``).
    public var target: Int
    /// How many participants were eligible.
    public var eligibleCount: Int

    public init(cohort: [SiteID], target: Int, eligibleCount: Int) {
        self.cohort = cohort
        self.target = target
        self.eligibleCount = eligibleCount
    }

    /// The participants that offer training samples of `dataset`, sorted by site.
    public static func eligible(
        _ available: some Sequence<ParticipantDescriptor>, dataset: String
    ) -> [ParticipantDescriptor] {
        available.filter { ($0.datasets[dataset] ?? 0) > 0 }.sorted { $0.site < $1.site }
    }

    /// Chooses a round's cohort: of the participants in `available` that offer samples of
    /// `dataset`, as many as `rule` selects for their number, drawn uniformly with `random`.
    ///
    /// A pure function: the same participants, rule and generator state give the same cohort,
    /// whatever order `available` lists them in. The eligible participants are sorted by site
    /// and shuffled with `random` (which advances), and the first ones taken.
    ///
    /// - Throws: ``CohortSelectionError/Code-swift.struct/tooFewEligible`` when fewer than
    ///   `max(1, rule.minimum)` participants are eligible (the round waits for more), and
    ///   ``CohortSelectionError/Code-swift.struct/duplicateSite`` when a site is listed twice.
    public static func select(
        from available: some Sequence<ParticipantDescriptor>, dataset: String, rule: FederationPlan.Selection,
        random: inout TesseraRandom
    ) throws(CohortSelectionError) -> CohortSelection {
        var candidates = eligible(available, dataset: dataset)
        for (previous, next) in zip(candidates, candidates.dropFirst()) where previous.site == next.site {
            throw CohortSelectionError(
                code: .duplicateSite,
                message: "participant \(next.site) is listed twice among the available participants")
        }
        let minimum = max(1, rule.minimum)
        guard candidates.count >= minimum else {
            throw CohortSelectionError(
                code: .tooFewEligible,
                message: "only \(candidates.count) participants offer dataset \(dataset); the minimum is \(minimum)")
        }
        let (target, selectedCount) = rule.sizes(eligible: candidates.count)
        random.shuffle(&candidates)
        let cohort = candidates.prefix(selectedCount).map(\.site).sorted()
        return CohortSelection(cohort: cohort, target: target, eligibleCount: candidates.count)
    }
}

extension CohortSelection {
    /// Poisson sampling (differential privacy): every eligible participant joins independently
    /// with probability `rate`, each drawing one 53-bit uniform from `random` in site order, so
    /// the cohort is a function of the participants and the generator alone. The cohort may be
    /// smaller than any minimum, even empty: redrawing until it is large enough would break the
    /// independence the privacy accountant's amplification relies on, so the caller fails the
    /// round instead. `target` is the whole cohort: a private round waits for every site it
    /// drew rather than closing early on the first arrivals.
    public static func poisson(
        from available: some Sequence<ParticipantDescriptor>, dataset: String, rate: Double,
        random: inout TesseraRandom
    ) -> CohortSelection {
        let candidates = eligible(available, dataset: dataset)
        var cohort: [SiteID] = []
        for candidate in candidates {
            let uniform = Double(random.next() >> 11) * 0x1p-53
            if uniform < rate { cohort.append(candidate.site) }
        }
        return CohortSelection(cohort: cohort, target: max(1, cohort.count), eligibleCount: candidates.count)
    }
}

/// Why no cohort could be selected.
public struct CohortSelectionError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case tooFewEligible, duplicateSite
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// Fewer participants offer the dataset than the rule's minimum.
        public static let tooFewEligible = Code(.tooFewEligible)
        /// The same site appears twice among the available participants.
        public static let duplicateSite = Code(.duplicateSite)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// What went wrong, naming the dataset, the counts or the site.
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
