/// Coordinate-wise median aggregation (Yin et al. 2018, "Byzantine-Robust Distributed
/// Learning: Towards Optimal Statistical Rates").
///
/// Each coordinate of the aggregate is the median of that coordinate across the updates, so
/// fewer than half of the participants cannot drag it arbitrarily far. The median is
/// **unweighted**: weighting by reported sample counts would let one participant claim a huge
/// count and decide the result. The new model is `x + η_s · median`.
///
/// It needs every individual update, so it cannot run under secure aggregation.
public struct Median: RoundCountingStrategy, Hashable {
    public static let defaultServerLearningRate = 1.0

    public let serverLearningRate: Double
    public internal(set) var rounds = 0

    public var name: String { "median" }
    public var requiresIndividualUpdates: Bool { true }

    public init(serverLearningRate: Double = Median.defaultServerLearningRate) throws(AggregationError) {
        try Aggregation.requireServerLearningRate(serverLearningRate, strategy: "median")
        self.serverLearningRate = serverLearningRate
    }

    public mutating func step(global: [Float], aggregate: RoundAggregate) throws(AggregationError) -> [Float] {
        let updates = try individualUpdates(of: aggregate, global: global)
        let median = try Aggregation.coordinateMedian(updates)
        let next = try Aggregation.serverStep(global: global, direction: median, learningRate: serverLearningRate)
        rounds += 1
        return next
    }
}

extension Aggregation {
    /// The coordinate-wise median: for an odd count the middle value, for an even count the mean
    /// of the two middle values.
    public static func coordinateMedian(_ vectors: [[Float]]) throws(AggregationError) -> [Float] {
        try checkVectors(vectors)
        let n = vectors.count
        var column = [Float](repeating: 0, count: n)
        var result = [Float](repeating: 0, count: vectors[0].count)
        for j in result.indices {
            for k in 0..<n { column[k] = vectors[k][j] }
            column.sort()
            result[j] =
                n % 2 == 1
                ? column[n / 2]
                : Float((Double(column[n / 2 - 1]) + Double(column[n / 2])) / 2)
        }
        return result
    }
}
