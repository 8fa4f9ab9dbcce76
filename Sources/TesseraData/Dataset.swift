public import TesseraTensor

/// What the labels of a dataset are: class indices or real-valued targets.
public enum LabelTask: Sendable, Hashable {
    /// Labels are class indices `0..<classCount`.
    case classification
    /// Labels are real numbers.
    case regression
}

/// A labelled dataset held in memory: one row of features per sample and one label.
///
/// Why one struct for every task: a site's trainer, the partitioners and the loaders only
/// need "N samples, each a block of floats, each with a target". Classification and
/// regression differ only in ``classCount``: a class index is stored as a `Float` in
/// ``labels`` (exact for any index below 2^24), so the same `Tensor` plumbing — batching,
/// subsetting, serialising — serves both.
///
/// `Dataset` is a value: `features` and `labels` are copy-on-write tensors, so handing one
/// site's dataset to a task is O(1), and ``subset(indices:)`` copies only the rows it keeps.
///
/// Invariants (checked by the throwing initialiser): `features` is `[N, F…]` with at least
/// one per-sample dimension, `labels` is `[N]`, and for classification every label is an
/// integer in `0..<classCount`.
public struct Dataset: Sendable {
    /// The features, batch-first: `[N, F…]` (`[N, F]` for tabular data, `[N, H, W]` or
    /// `[N, C, H, W]` for images).
    public private(set) var features: Tensor
    /// One target per sample, `[N]`: a class index for classification, a real value for
    /// regression.
    public private(set) var labels: Tensor
    /// The name of each flattened feature (the CSV header, the generator's columns), if known.
    /// Carried along so that a model card and a standardiser can say which input is which.
    public var featureNames: [String]?
    /// The number of classes for classification; `nil` for regression.
    public private(set) var classCount: Int?
    /// The original label text of each class index, when labels were strings in a file
    /// (class `i` is `classNames[i]`); `nil` when labels were already integers.
    public var classNames: [String]?

    /// Wraps features and labels, checking that they describe the same samples.
    ///
    /// - Parameters:
    ///   - features: `[N, F…]`; a rank-1 `[N]` tensor is taken as one feature per sample.
    ///   - labels: `[N]` (or `[N, 1]`, which is flattened).
    ///   - classCount: the number of classes, or `nil` for a regression target.
    /// - Throws: `DataError.shapeMismatch` if the sample counts or the name count disagree;
    ///   `DataError.invalidLabel` if a class label is not an integer in `0..<classCount`.
    public init(
        features: Tensor, labels: Tensor, featureNames: [String]? = nil, classCount: Int? = nil,
        classNames: [String]? = nil
    ) throws {
        var features = features
        var labels = labels
        if features.rank == 0 {
            throw DataError(.shapeMismatch, "features must be [N, F…], got a scalar")
        }
        if features.rank == 1 { features = features.reshaped([features.shape[0], 1]) }
        if labels.rank == 2 && labels.shape[1] == 1 { labels = labels.reshaped([labels.shape[0]]) }
        guard labels.rank == 1 else {
            throw DataError(.shapeMismatch, "labels must be [N], got shape \(labels.shape)")
        }
        guard features.shape[0] == labels.shape[0] else {
            throw DataError(
                .shapeMismatch,
                "features hold \(features.shape[0]) samples (shape \(features.shape)) but labels hold \(labels.shape[0])"
            )
        }
        let perSample = features.shape.dropFirst().reduce(1, *)
        if let featureNames, featureNames.count != perSample {
            throw DataError(
                .shapeMismatch, "\(featureNames.count) feature names given for \(perSample) features per sample")
        }
        if let classCount {
            guard classCount >= 1 else {
                throw DataError(.invalidArgument, "classCount must be at least 1, got \(classCount)")
            }
            let bad = labels.withUnsafeBufferPointer { buffer in
                buffer.firstIndex { !($0 >= 0 && $0 < Float(classCount) && $0.rounded() == $0) }
            }
            if let bad {
                throw DataError(
                    .invalidLabel,
                    "label \(labels.scalars[bad]) of sample \(bad) is not a class index in 0..<\(classCount)")
            }
            if let classNames, classNames.count != classCount {
                throw DataError(
                    .shapeMismatch, "\(classNames.count) class names given for \(classCount) classes")
            }
        } else if classNames != nil {
            throw DataError(.invalidArgument, "class names were given for a regression dataset (classCount is nil)")
        }
        self.init(
            unchecked: features, labels: labels, featureNames: featureNames, classCount: classCount,
            classNames: classNames)
    }

    /// Assembles a dataset whose invariants the caller has already established.
    init(unchecked features: Tensor, labels: Tensor, featureNames: [String]?, classCount: Int?, classNames: [String]?) {
        self.features = features
        self.labels = labels
        self.featureNames = featureNames
        self.classCount = classCount
        self.classNames = classNames
    }

    /// The number of samples, N.
    public var count: Int { labels.count }

    /// The shape of one sample's features (`features.shape` without N).
    public var sampleShape: [Int] { Array(features.shape.dropFirst()) }

    /// The number of floats in one sample, the product of ``sampleShape``.
    public var featuresPerSample: Int { features.shape.dropFirst().reduce(1, *) }

    /// Whether the labels are class indices.
    public var isClassification: Bool { classCount != nil }

    /// The labels as class indices (classification only).
    public var classIndices: [Int] { labels.scalars.map { Int($0) } }

    /// How many samples carry each class, `[classCount]`; empty for regression.
    public func classHistogram() -> [Int] {
        guard let classCount else { return [] }
        var histogram = [Int](repeating: 0, count: classCount)
        labels.withUnsafeBufferPointer { for label in $0 { histogram[Int(label)] += 1 } }
        return histogram
    }

    // MARK: Selection

    /// The samples at `indices`, in that order (repeats allowed). Metadata is kept.
    ///
    /// Copies only the selected rows, with one allocation per tensor; this is how partitions
    /// and train/test splits materialise a client's data. An index outside `0..<count` is a
    /// programming error and traps (the partitioners only produce valid indices).
    public func subset(indices: [Int]) -> Dataset {
        let width = featuresPerSample
        let n = count
        precondition(indices.allSatisfy { $0 >= 0 && $0 < n }, "subset index out of range 0..<\(n)")
        let newFeatures = [Float](unsafeUninitializedCapacity: indices.count * width) { out, initialized in
            features.withUnsafeBufferPointer { source in
                guard let src = source.baseAddress, let dst = out.baseAddress else { return }
                for (row, index) in indices.enumerated() {
                    (dst + row * width).initialize(from: src + index * width, count: width)
                }
            }
            initialized = indices.count * width
        }
        let newLabels = labels.withUnsafeBufferPointer { source in indices.map { source[$0] } }
        return Dataset(
            unchecked: Tensor(shape: [indices.count] + sampleShape, scalars: newFeatures),
            labels: Tensor(newLabels), featureNames: featureNames, classCount: classCount,
            classNames: classNames)
    }

    /// The same samples in a seeded random order (Fisher–Yates on `TesseraRandom`), so two
    /// runs with one seed see the same order on every machine.
    public func shuffled(seed: UInt64) -> Dataset {
        var order = Array(0..<count)
        var rng = TesseraRandom(seed: seed)
        rng.shuffle(&order)
        return subset(indices: order)
    }

    /// Splits into a training and a test set, after a seeded shuffle.
    ///
    /// The test set gets `round(testFraction · N)` samples, but at least one, and the
    /// training set keeps at least one, so a tiny site still yields two usable sets. With
    /// `stratified` (classification only) the fraction is applied within each class, so a
    /// rare class is not left out of either side by chance; the test set then has
    /// `Σ_c round(testFraction · N_c)` samples.
    ///
    /// - Throws: `DataError.invalidArgument` if `testFraction` is not in `(0, 1)` or there are
    ///   fewer than two samples.
    public func split(
        testFraction: Double, seed: UInt64, stratified: Bool = false
    ) throws -> (
        train: Dataset, test: Dataset
    ) {
        guard testFraction > 0 && testFraction < 1 else {
            throw DataError(.invalidArgument, "testFraction must be in (0, 1), got \(testFraction)")
        }
        guard count >= 2 else {
            throw DataError(.invalidArgument, "cannot split \(count) sample(s) into a training and a test set")
        }
        var rng = TesseraRandom(seed: seed)
        var trainIndices: [Int] = []
        var testIndices: [Int] = []
        if stratified, let classCount {
            var byClass = [[Int]](repeating: [], count: classCount)
            labels.withUnsafeBufferPointer { for (i, label) in $0.enumerated() { byClass[Int(label)].append(i) } }
            for var members in byClass where !members.isEmpty {
                rng.shuffle(&members)
                let take = Int((testFraction * Double(members.count)).rounded())
                testIndices += members.prefix(take)
                trainIndices += members.dropFirst(take)
            }
            // Keep both sides non-empty even when every class is tiny.
            if testIndices.isEmpty { testIndices.append(trainIndices.removeLast()) }
            if trainIndices.isEmpty { trainIndices.append(testIndices.removeLast()) }
            rng.shuffle(&trainIndices)
            rng.shuffle(&testIndices)
        } else {
            var order = Array(0..<count)
            rng.shuffle(&order)
            let take = min(count - 1, max(1, Int((testFraction * Double(count)).rounded())))
            testIndices = Array(order.prefix(take))
            trainIndices = Array(order.dropFirst(take))
        }
        return (subset(indices: trainIndices), subset(indices: testIndices))
    }

    /// All the samples of `parts`, in order: a centralised baseline from per-site data.
    ///
    /// - Throws: `DataError.shapeMismatch` if the per-sample shapes or the tasks differ.
    public static func concatenating(_ parts: [Dataset]) throws -> Dataset {
        guard let first = parts.first else {
            throw DataError(.invalidArgument, "cannot concatenate an empty list of datasets")
        }
        for (i, part) in parts.enumerated() {
            guard part.sampleShape == first.sampleShape else {
                throw DataError(
                    .shapeMismatch,
                    "dataset \(i) has samples of shape \(part.sampleShape), dataset 0 has \(first.sampleShape)")
            }
            guard part.classCount == first.classCount else {
                throw DataError(
                    .shapeMismatch,
                    "dataset \(i) has classCount \(part.classCount.map(String.init) ?? "nil (regression)"), dataset 0 has \(first.classCount.map(String.init) ?? "nil (regression)")"
                )
            }
        }
        var features: [Float] = []
        var labels: [Float] = []
        features.reserveCapacity(parts.reduce(0) { $0 + $1.features.count })
        labels.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts {
            features += part.features.scalars
            labels += part.labels.scalars
        }
        return Dataset(
            unchecked: Tensor(shape: [labels.count] + first.sampleShape, scalars: features), labels: Tensor(labels),
            featureNames: first.featureNames, classCount: first.classCount, classNames: first.classNames)
    }

    /// The same dataset with features transformed in place by `body` (used by the
    /// standardiser, which keeps N and the per-sample shape).
    func mappingFeatures(_ body: (inout UnsafeMutableBufferPointer<Float>) -> Void) -> Dataset {
        var copy = self
        copy.features.withUnsafeMutableBufferPointer(body)
        return copy
    }
}
