/// Coordinate-wise trimmed mean (Yin et al. 2018): for each coordinate, drop the `k = ⌊βn⌋`
/// largest and `k` smallest values and average the rest.
///
/// It tolerates up to `k` arbitrary updates per coordinate while averaging more of the honest
/// values than the median does. Like the median it is unweighted, so reported sample counts
/// cannot buy influence. The new model is `x + η_s · trimmed mean`.
///
/// Default `β = 0.1`: trims one update in ten from each side, a common choice in the robust
/// aggregation literature; set it at or above the fraction of participants you expect to
/// misbehave. `β` must lie in `[0, 0.5)`, and each round needs `2⌊βn⌋ < n`.
///
/// It needs every individual update, so it cannot run under secure aggregation.
public struct TrimmedMean: RoundCountingStrategy, Hashable {
    public static let defaultServerLearningRate = 1.0
    public static let defaultTrimFraction = 0.1

    /// `β`, the fraction trimmed from *each* side.
    public let trimFraction: Double
    public let serverLearningRate: Double
    public internal(set) var rounds = 0

    public var name: String { "trimmed_mean" }
    public var requiresIndividualUpdates: Bool { true }

    public init(
        trimFraction: Double = TrimmedMean.defaultTrimFraction,
        serverLearningRate: Double = TrimmedMean.defaultServerLearningRate
    ) throws(AggregationError) {
        try Aggregation.require(
            trimFraction >= 0 && trimFraction < 0.5, "trimmed_mean: β must lie in [0, 0.5), got \(trimFraction).")
        try Aggregation.requireServerLearningRate(serverLearningRate, strategy: "trimmed_mean")
        self.trimFraction = trimFraction
        self.serverLearningRate = serverLearningRate
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let updates = try individualUpdates(of: aggregate, global: global)
        let trimmed = try Aggregation.trimmedMean(updates, trimFraction: trimFraction)
        let next = try Aggregation.serverStep(global: global, direction: trimmed, learningRate: serverLearningRate)
        rounds += 1
        return next
    }
}

extension Aggregation {
    /// The number of values trimmed from each side for `count` updates: `⌊β · count⌋`.
    public static func trimCount(count: Int, trimFraction: Double) -> Int {
        Int((trimFraction * Double(count)).rounded(.down))
    }

    /// The coordinate-wise `β`-trimmed mean.
    ///
    /// - Throws: ``AggregationError/Code-swift.struct/invalidParameter`` when `β ∉ [0, 0.5)` or
    ///   when trimming `⌊βn⌋` from each side would leave nothing.
    public static func trimmedMean(_ vectors: [[Float]], trimFraction: Double) throws(AggregationError) -> [Float] {
        try checkVectors(vectors)
        try require(
            trimFraction >= 0 && trimFraction < 0.5, "The trim fraction β must lie in [0, 0.5), got \(trimFraction).")
        let n = vectors.count
        let k = trimCount(count: n, trimFraction: trimFraction)
        try require(
            2 * k < n, "Trimming \(k) from each side of \(n) updates leaves none; lower β or wait for more updates.")
        var column = [Float](repeating: 0, count: n)
        var result = [Float](repeating: 0, count: vectors[0].count)
        let kept = Double(n - 2 * k)
        for j in result.indices {
            for i in 0..<n { column[i] = vectors[i][j] }
            column.sort()
            var sum = 0.0
            for i in k..<(n - k) { sum += Double(column[i]) }
            result[j] = Float(sum / kept)
        }
        return result
    }
}
