import Foundation
public import TesseraTensor

/// The Synthetic(α, β) federated benchmark of FedProx (Li et al., "Federated Optimization in
/// Heterogeneous Networks", MLSys 2020, §5.1), itself following Shamir et al. (2014).
///
/// Why this benchmark: its two knobs separate the two kinds of heterogeneity that federated
/// optimisers are judged on. α controls how much the devices' *models* differ (concept shift:
/// the same x gets different labels on different devices); β controls how much their *inputs*
/// differ (covariate shift). Synthetic(0, 0), (0.5, 0.5) and (1, 1) are the paper's settings,
/// and Synthetic-IID is the control.
///
/// For device k (of K, default 30), with d = 60 features and C = 10 classes:
/// - `u_k ~ N(0, α)` and `B_k ~ N(0, β)`;
/// - `W_k ∈ R^{d×C}` and `b_k ∈ R^C` have entries `~ N(u_k, 1)`;
/// - `v_k ∈ R^d` has entries `~ N(B_k, 1)`;
/// - each sample is `x ~ N(v_k, Σ)` with `Σ` diagonal, `Σ_jj = j^-1.2` (j from 1), and its
///   label is `y = argmax(softmax(x W_k + b_k))` — the argmax of the logits, since softmax is
///   monotone.
///
/// Synthetic-IID uses one `W`, `b` with entries `~ N(0, 1)` for every device and `v_k = 0`,
/// so all devices draw from one distribution (FedProx's `generate_iid.py`).
///
/// Choices taken from the authors' reference generators (`litian96/FedProx`,
/// `data/synthetic_*/generate_synthetic.py` and `data/synthetic_iid/generate_iid.py`), where the
/// paper is silent:
/// - **Device sizes** are `⌊exp(N(4, 2))⌋ + 50`, a log-normal with log-mean 4 and log-sd 2
///   (numpy's `lognormal(4, 2)` truncated to an integer) plus a floor of 50 samples — the paper
///   only says sizes "follow a power law". The median device has ~104 samples and a few have
///   thousands. ``Configuration/maximumSamples`` optionally caps this for quick tests.
/// - **α and β are standard deviations** (numpy's `scale`), although the paper writes
///   `N(0, α)`. For the published settings α, β ∈ {0, 1} the two readings agree.
/// - The reference scripts then hold out 10% of each device for testing; here the caller does
///   that with ``Dataset/split(testFraction:seed:stratified:)``.
///
/// Randomness is drawn from independent `TesseraRandom` streams (sizes, priors, the shared IID
/// model, and one stream per device), so changing K keeps the first devices' data unchanged.
public enum FedProxSynthetic {
    /// The generator's parameters; the defaults are the paper's Synthetic(1, 1).
    public struct Configuration: Sendable, Hashable {
        /// The spread of the per-device model means `u_k` (standard deviation).
        public var alpha: Double
        /// The spread of the per-device input-mean centres `B_k` (standard deviation).
        public var beta: Double
        /// Synthetic-IID: one shared model and input distribution (α and β are ignored).
        public var iid: Bool
        /// The number of devices K.
        public var devices: Int
        /// The number of features d.
        public var dimension: Int
        /// The number of classes C.
        public var classes: Int
        /// The log-mean of the device-size log-normal.
        public var sizeLogMean: Double
        /// The log-standard-deviation of the device-size log-normal.
        public var sizeLogSigma: Double
        /// The samples every device has on top of its log-normal draw.
        public var minimumSamples: Int
        /// An optional cap on a device's samples (`nil`: as in the paper).
        public var maximumSamples: Int?
        /// Gives every device exactly this many samples instead of the log-normal sizes: for
        /// experiments that study heterogeneity of models and inputs without quantity skew.
        public var samplesPerDevice: Int?

        public init(
            alpha: Double = 1, beta: Double = 1, iid: Bool = false, devices: Int = 30, dimension: Int = 60,
            classes: Int = 10, sizeLogMean: Double = 4, sizeLogSigma: Double = 2, minimumSamples: Int = 50,
            maximumSamples: Int? = nil, samplesPerDevice: Int? = nil
        ) {
            self.alpha = alpha
            self.beta = beta
            self.iid = iid
            self.devices = devices
            self.dimension = dimension
            self.classes = classes
            self.sizeLogMean = sizeLogMean
            self.sizeLogSigma = sizeLogSigma
            self.minimumSamples = minimumSamples
            self.maximumSamples = maximumSamples
            self.samplesPerDevice = samplesPerDevice
        }

        /// Synthetic(α, β) with the paper's other settings.
        public static func synthetic(alpha: Double, beta: Double, devices: Int = 30) -> Configuration {
            Configuration(alpha: alpha, beta: beta, devices: devices)
        }

        /// Synthetic-IID with the paper's other settings.
        public static func iid(devices: Int = 30, samplesPerDevice: Int? = nil) -> Configuration {
            Configuration(alpha: 0, beta: 0, iid: true, devices: devices, samplesPerDevice: samplesPerDevice)
        }
    }

    /// One device's data and the ground truth that produced it.
    public struct Device: Sendable {
        /// The device's samples: features `[n_k, d]`, labels in `0..<C`.
        public var dataset: Dataset
        /// `W_k`, `[d, C]`.
        public var weights: Tensor
        /// `b_k`, `[C]`.
        public var bias: Tensor
        /// `v_k`, the mean of the device's inputs, `[d]`.
        public var featureMean: Tensor
    }

    /// Generates every device's data; deterministic for a seed.
    ///
    /// - Parameter heldOutSeed: draws fresh samples from the same devices: the sizes, models
    ///   and feature distributions still come from `seed`, but the samples come from streams
    ///   of this seed, so a held-out test set shares the training data's distribution and none
    ///   of its rows. `nil` (default) draws the samples from `seed`.
    /// - Throws: `DataError.invalidArgument` for non-positive sizes or negative spreads.
    public static func generate(
        _ configuration: Configuration = Configuration(), seed: UInt64, heldOutSeed: UInt64? = nil
    ) throws -> [Device] {
        let c = configuration
        guard c.devices >= 1, c.dimension >= 1, c.classes >= 2, c.minimumSamples >= 0 else {
            throw DataError(
                .invalidArgument,
                "Synthetic needs devices ≥ 1, dimension ≥ 1, classes ≥ 2 and minimumSamples ≥ 0 (got \(c.devices), \(c.dimension), \(c.classes), \(c.minimumSamples))"
            )
        }
        guard c.alpha >= 0, c.beta >= 0, c.sizeLogSigma >= 0 else {
            throw DataError(.invalidArgument, "alpha, beta and sizeLogSigma must be non-negative")
        }
        if let fixed = c.samplesPerDevice, fixed < 1 {
            throw DataError(.invalidArgument, "samplesPerDevice must be at least 1, got \(fixed)")
        }
        if let cap = c.maximumSamples, cap < max(1, c.minimumSamples) {
            throw DataError(.invalidArgument, "maximumSamples \(cap) is below minimumSamples \(c.minimumSamples)")
        }
        let root = TesseraRandom(seed: seed)
        var sizeStream = root.derived(1)
        var priorStream = root.derived(2)
        var sharedStream = root.derived(3)

        let sizes: [Int] = (0..<c.devices).map { _ in
            let draw = exp(c.sizeLogMean + c.sizeLogSigma * sizeStream.nextGaussian())
            var n = Int(min(draw, 1e9)) + c.minimumSamples
            if let cap = c.maximumSamples { n = min(n, cap) }
            // The draw is made even when overridden, so the other streams stay aligned.
            return c.samplesPerDevice ?? max(1, n)
        }
        // (u_k, B_k) pairs in device order, so device k's priors do not depend on K.
        var modelMeans: [Double] = []
        var inputCentres: [Double] = []
        for _ in 0..<c.devices {
            modelMeans.append(c.alpha * priorStream.nextGaussian())
            inputCentres.append(c.beta * priorStream.nextGaussian())
        }
        let shared: (weights: [Float], bias: [Float])? =
            c.iid
            ? (
                (0..<c.dimension * c.classes).map { _ in Float(sharedStream.nextGaussian()) },
                (0..<c.classes).map { _ in Float(sharedStream.nextGaussian()) }
            ) : nil
        let deviation = (1...c.dimension).map { Float(pow(Double($0), -1.2).squareRoot()) }

        var devices: [Device] = []
        devices.reserveCapacity(c.devices)
        for k in 0..<c.devices {
            var rng = root.derived(100 + UInt64(k))
            let mean: [Float]
            let weights: [Float]
            let bias: [Float]
            if let shared {
                mean = [Float](repeating: 0, count: c.dimension)
                weights = shared.weights
                bias = shared.bias
            } else {
                mean = (0..<c.dimension).map { _ in Float(inputCentres[k] + rng.nextGaussian()) }
                weights = (0..<c.dimension * c.classes).map { _ in Float(modelMeans[k] + rng.nextGaussian()) }
                bias = (0..<c.classes).map { _ in Float(modelMeans[k] + rng.nextGaussian()) }
            }
            if let heldOutSeed { rng = TesseraRandom(seed: heldOutSeed).derived(1_000_000 + UInt64(k)) }
            let n = sizes[k]
            var x = [Float](repeating: 0, count: n * c.dimension)
            var y = [Float](repeating: 0, count: n)
            var logits = [Float](repeating: 0, count: c.classes)
            for i in 0..<n {
                let row = i * c.dimension
                for j in 0..<c.dimension {
                    x[row + j] = mean[j] + deviation[j] * Float(rng.nextGaussian())
                }
                y[i] = Float(argmaxLogit(x, row: row, weights: weights, bias: bias, logits: &logits))
            }
            let dataset = Dataset(
                unchecked: Tensor(shape: [n, c.dimension], scalars: x), labels: Tensor(y),
                featureNames: nil, classCount: c.classes, classNames: nil)
            devices.append(
                Device(
                    dataset: dataset, weights: Tensor(shape: [c.dimension, c.classes], scalars: weights),
                    bias: Tensor(bias), featureMean: Tensor(mean)))
        }
        return devices
    }

    /// Just the per-device datasets.
    public static func datasets(
        _ configuration: Configuration = Configuration(), seed: UInt64, heldOutSeed: UInt64? = nil
    ) throws -> [Dataset] {
        try generate(configuration, seed: seed, heldOutSeed: heldOutSeed).map(\.dataset)
    }

    /// `argmax_c (x W + b)_c` for the sample starting at `row`; the first maximum wins.
    static func argmaxLogit(_ x: [Float], row: Int, weights: [Float], bias: [Float], logits: inout [Float]) -> Int {
        let classes = bias.count
        let dimension = weights.count / classes
        for c in 0..<classes { logits[c] = bias[c] }
        for j in 0..<dimension {
            let xj = x[row + j]
            let base = j * classes
            for c in 0..<classes { logits[c] += xj * weights[base + c] }
        }
        var best = 0
        for c in 1..<classes where logits[c] > logits[best] { best = c }
        return best
    }
}
