/// Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui and Stainer 2017, "Machine Learning
/// with Adversaries: Byzantine Tolerant Gradient Descent").
///
/// With `n` updates of which at most `f` are Byzantine, each update `i` gets the score
///
///     s(i) = Σ_{j ∈ N_i} ‖x_i − x_j‖²
///
/// where `N_i` holds the `n − f − 2` updates closest to `x_i` (other than itself). An honest
/// update sits among the other honest ones and scores low; an outlier is far from at least
/// `n − f − 2` of them whatever it does. Krum returns the update with the lowest score;
/// Multi-Krum averages the `m` lowest-scoring updates, trading some robustness for the
/// variance reduction of averaging. The guarantee needs `n > 2f + 2`.
///
/// Ties go to the lower index, so a round is reproducible. Like the other robust rules the
/// selection is unweighted. The new model is `x + η_s · selected`.
///
/// It needs every individual update, so it cannot run under secure aggregation.
public struct Krum: RoundCountingStrategy, Hashable {
    public static let defaultServerLearningRate = 1.0
    /// One Byzantine participant assumed unless the experiment says otherwise: the smallest
    /// assumption that makes the rule do anything (needs at least 5 updates per round).
    public static let defaultByzantine = 1

    /// `f`, the number of Byzantine participants tolerated.
    public let byzantine: Int
    public let serverLearningRate: Double
    /// The index (in the round's update order) Krum chose last round, for logs and tests.
    public private(set) var lastSelection: [Int] = []
    public internal(set) var rounds = 0

    public var name: String { "krum" }
    public var requiresIndividualUpdates: Bool { true }

    public init(
        byzantine: Int = Krum.defaultByzantine, serverLearningRate: Double = Krum.defaultServerLearningRate
    ) throws(AggregationError) {
        try Aggregation.require(
            byzantine >= 0, "krum: the number of Byzantine participants f cannot be negative, got \(byzantine).")
        try Aggregation.requireServerLearningRate(serverLearningRate, strategy: "krum")
        self.byzantine = byzantine
        self.serverLearningRate = serverLearningRate
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let updates = try individualUpdates(of: aggregate, global: global)
        let chosen = try Aggregation.krum(updates, byzantine: byzantine)
        let next = try Aggregation.serverStep(
            global: global, direction: chosen.vector, learningRate: serverLearningRate)
        lastSelection = [chosen.index]
        rounds += 1
        return next
    }
}

/// Multi-Krum: the mean of the `m` updates with the best Krum scores (see ``Krum``).
///
/// Default `m = n − f` per round (``selected`` `nil`), the choice Blanchard et al. evaluate:
/// keep every update that could be honest.
public struct MultiKrum: RoundCountingStrategy, Hashable {
    public static let defaultServerLearningRate = 1.0
    public static let defaultByzantine = 1

    public let byzantine: Int
    /// `m`; `nil` means `n − f` for a round of `n` updates.
    public let selected: Int?
    public let serverLearningRate: Double
    /// The indices (in the round's update order) Multi-Krum averaged last round.
    public private(set) var lastSelection: [Int] = []
    public internal(set) var rounds = 0

    public var name: String { "multi_krum" }
    public var requiresIndividualUpdates: Bool { true }

    public init(
        byzantine: Int = MultiKrum.defaultByzantine, selected: Int? = nil,
        serverLearningRate: Double = MultiKrum.defaultServerLearningRate
    ) throws(AggregationError) {
        try Aggregation.require(
            byzantine >= 0, "multi_krum: the number of Byzantine participants f cannot be negative, got \(byzantine).")
        if let selected {
            try Aggregation.require(selected >= 1, "multi_krum: m must be at least 1, got \(selected).")
        }
        try Aggregation.requireServerLearningRate(serverLearningRate, strategy: "multi_krum")
        self.byzantine = byzantine
        self.selected = selected
        self.serverLearningRate = serverLearningRate
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let updates = try individualUpdates(of: aggregate, global: global)
        let m = selected ?? max(1, updates.count - byzantine)
        let chosen = try Aggregation.multiKrum(updates, byzantine: byzantine, selecting: m)
        let next = try Aggregation.serverStep(global: global, direction: chosen.mean, learningRate: serverLearningRate)
        lastSelection = chosen.indices
        rounds += 1
        return next
    }
}

extension Aggregation {
    /// The smallest number of updates Krum accepts for `byzantine` assumed attackers: `2f + 3`.
    public static func krumMinimumUpdates(byzantine f: Int) -> Int { 2 * f + 3 }

    /// Krum scores: for each update, the sum of squared distances to its `n − f − 2` nearest
    /// other updates.
    ///
    /// - Throws: ``AggregationError/Code-swift.struct/tooManyByzantine`` unless `n > 2f + 2`.
    public static func krumScores(_ vectors: [[Float]], byzantine f: Int) throws(AggregationError) -> [Double] {
        try checkVectors(vectors)
        try require(f >= 0, "The number of Byzantine participants f cannot be negative, got \(f).")
        let n = vectors.count
        guard n > 2 * f + 2 else {
            throw AggregationError(
                .tooManyByzantine,
                "Krum with f = \(f) Byzantine participants needs n > 2f + 2 = \(2 * f + 2) updates, got \(n): with fewer, "
                    + "the attackers could outnumber the honest neighbours every score is computed from. Lower f or "
                    + "raise the cohort size to at least \(krumMinimumUpdates(byzantine: f)).")
        }
        var distances = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in (i + 1)..<n {
                var sum = 0.0
                for (a, b) in zip(vectors[i], vectors[j]) {
                    let d = Double(a) - Double(b)
                    sum += d * d
                }
                distances[i][j] = sum
                distances[j][i] = sum
            }
        }
        let neighbours = n - f - 2
        return (0..<n).map { i in
            var others = distances[i]
            others.remove(at: i)
            others.sort()
            return others.prefix(neighbours).reduce(0, +)
        }
    }

    /// Krum: the update with the lowest score, and its index.
    public static func krum(
        _ vectors: [[Float]], byzantine f: Int
    ) throws(AggregationError) -> (index: Int, vector: [Float]) {
        let scores = try krumScores(vectors, byzantine: f)
        let best = lowestScores(scores, count: 1)[0]
        return (best, vectors[best])
    }

    /// Multi-Krum: the unweighted mean of the `m` lowest-scoring updates, and their indices in
    /// ascending score order.
    ///
    /// - Throws: as ``krumScores(_:byzantine:)``, and ``AggregationError/Code-swift.struct/invalidParameter``
    ///   unless `1 ≤ m ≤ n`.
    public static func multiKrum(
        _ vectors: [[Float]], byzantine f: Int, selecting m: Int
    ) throws(AggregationError) -> (indices: [Int], mean: [Float]) {
        let scores = try krumScores(vectors, byzantine: f)
        try require(
            (1...vectors.count).contains(m),
            "Multi-Krum must select between 1 and \(vectors.count) updates, got m = \(m).")
        let indices = lowestScores(scores, count: m)
        return (indices, try mean(indices.map { vectors[$0] }))
    }

    /// Indices of the `count` lowest scores, lowest first; ties go to the lower index.
    private static func lowestScores(_ scores: [Double], count: Int) -> [Int] {
        let order = scores.indices.sorted { a, b in scores[a] != scores[b] ? scores[a] < scores[b] : a < b }
        return Array(order.prefix(count))
    }
}
