public import TesseraTensor

/// Per-feature standardisation, `x' = (x − mean) / std`, with statistics fitted on training
/// data only.
///
/// Why fit on training data only: the test set stands for data the model has never seen. If
/// its mean and spread leak into the preprocessing, the reported accuracy is optimistic — and
/// in federated learning a site's held-out split is exactly what the coordinator uses to
/// decide whether a round helped. So the workflow is `fit(train)`, then `transform` both
/// train and test with the same statistics (and ship them with the model, which is why this
/// type is `Codable`).
///
/// Statistics are per flattened feature (each of the `F…` positions of a sample), computed in
/// double precision with the population standard deviation (divide by N). A constant feature
/// (standard deviation ≤ `1e-12 · max(1, |mean|)`) gets a standard deviation of 1, so it is
/// centred to zero rather than divided by zero.
public struct Standardizer: Sendable, Hashable, Codable {
    /// The training mean of each flattened feature.
    public var mean: [Float]
    /// The training standard deviation of each flattened feature (1 for constant features).
    public var standardDeviation: [Float]

    /// Uses the given statistics (for example, loaded alongside a model).
    public init(mean: [Float], standardDeviation: [Float]) {
        precondition(mean.count == standardDeviation.count, "mean and standard deviation differ in length")
        precondition(standardDeviation.allSatisfy { $0 > 0 }, "standard deviations must be positive")
        self.mean = mean
        self.standardDeviation = standardDeviation
    }

    /// Fits the statistics on `training` (and only on it).
    ///
    /// - Throws: `DataError.invalidArgument` if the dataset is empty.
    public static func fit(_ training: Dataset) throws -> Standardizer {
        let n = training.count
        let width = training.featuresPerSample
        guard n > 0 else { throw DataError(.invalidArgument, "cannot fit a standardiser on an empty dataset") }
        var sum = [Double](repeating: 0, count: width)
        var squares = [Double](repeating: 0, count: width)
        training.features.withUnsafeBufferPointer { x in
            // Two passes (mean, then squared deviations) avoid the cancellation of Σx² − N·mean².
            for row in 0..<n {
                let base = row * width
                for j in 0..<width { sum[j] += Double(x[base + j]) }
            }
            for j in 0..<width { sum[j] /= Double(n) }
            for row in 0..<n {
                let base = row * width
                for j in 0..<width {
                    let d = Double(x[base + j]) - sum[j]
                    squares[j] += d * d
                }
            }
        }
        var std = [Float](repeating: 1, count: width)
        for j in 0..<width {
            let s = (squares[j] / Double(n)).squareRoot()
            std[j] = s > 1e-12 * max(1, abs(sum[j])) ? Float(s) : 1
        }
        return Standardizer(mean: sum.map { Float($0) }, standardDeviation: std)
    }

    /// `dataset` with every feature standardised by these (training) statistics.
    ///
    /// - Throws: `DataError.shapeMismatch` if the dataset has a different number of features.
    public func transform(_ dataset: Dataset) throws -> Dataset {
        try checkWidth(dataset.featuresPerSample)
        let width = mean.count
        let inverse = standardDeviation.map { 1 / $0 }
        return dataset.mappingFeatures { x in
            mean.withUnsafeBufferPointer { m in
                inverse.withUnsafeBufferPointer { s in
                    var base = 0
                    while base < x.count {
                        for j in 0..<width { x[base + j] = (x[base + j] - m[j]) * s[j] }
                        base += width
                    }
                }
            }
        }
    }

    /// Standardises one sample (or a batch `[B, F…]`) in place: the form a serving path
    /// uses on a single record.
    public func apply(to features: inout Tensor) throws {
        let width = mean.count
        guard width > 0, features.count % width == 0 else {
            throw DataError(
                .shapeMismatch,
                "the standardiser has \(width) features but the tensor of shape \(features.shape) is not a whole number of samples"
            )
        }
        features.withUnsafeMutableBufferPointer { x in
            for i in 0..<x.count { x[i] = (x[i] - mean[i % width]) / standardDeviation[i % width] }
        }
    }

    private func checkWidth(_ width: Int) throws {
        guard width == mean.count else {
            throw DataError(
                .shapeMismatch, "the standardiser was fitted on \(mean.count) features but the dataset has \(width)")
        }
    }
}
