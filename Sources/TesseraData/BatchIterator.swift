public import TesseraTensor

/// Walks a dataset in mini-batches, one epoch at a time, filling **the same two buffers**
/// for every batch.
///
/// Why not return fresh tensors: a participant trains for E epochs of N/B batches each
/// round, and allocating two tensors per batch is pure overhead (and page-fault churn) on a
/// path the design says must not allocate. The iterator owns ``features`` and ``labels``;
/// ``next()`` resizes them in place (which keeps their allocation: a short last batch only
/// shrinks the count, and the next epoch grows back into the same capacity) and copies the
/// selected rows in with raw pointer copies.
///
/// Read the batch through ``features`` and ``labels`` between calls and do not keep those
/// tensors past the next call: a kept copy still works (copy-on-write), but forces the next
/// batch to allocate.
///
/// ```swift
/// var batches = dataset.batches(size: 32, shuffleSeed: 7)
/// while batches.next() {
///     try model.trainStep(batches.features, batches.labels)
/// }
/// ```
///
/// Order: with a shuffle seed, epoch `e` visits the samples in the permutation drawn from
/// `TesseraRandom(seed: shuffleSeed).derived(e)`, so every epoch differs, and epoch `e` is the
/// same whatever happened before it. Without a seed, samples come in dataset order.
public struct BatchIterator: Sendable {
    /// The dataset being walked.
    public let dataset: Dataset
    /// The number of samples in a full batch.
    public let batchSize: Int
    /// Whether a last, short batch is skipped (keeps every batch the same size, which some
    /// optimisers and BatchNorm-style statistics prefer).
    public let dropLast: Bool
    /// The seed of the per-epoch shuffle, or `nil` for dataset order.
    public let shuffleSeed: UInt64?
    /// The shape each sample is given in ``features`` (for example `[1, 28, 28]` to feed an
    /// IDX image dataset of `[N, 28, 28]` to a convolution).
    public let sampleShape: [Int]

    /// The current batch's features, `[b] + sampleShape`.
    public private(set) var features: Tensor
    /// The current batch's labels, `[b]`.
    public private(set) var labels: Tensor
    /// The epoch being walked (0 before the first batch of the first epoch).
    public private(set) var epoch: Int = 0
    /// The index of the current batch within its epoch, or -1 before the first.
    public private(set) var batchIndex: Int = -1

    private var order: [Int]
    private var cursor: Int = 0
    private var epochStarted = false

    /// Prepares to walk `dataset`.
    ///
    /// - Throws: `DataError.invalidArgument` if `batchSize < 1`, and
    ///   `DataError.shapeMismatch` if `sampleShape` does not hold exactly one sample's features.
    public init(
        dataset: Dataset, batchSize: Int, shuffleSeed: UInt64? = nil, dropLast: Bool = false,
        sampleShape: [Int]? = nil
    ) throws {
        guard batchSize >= 1 else {
            throw DataError(.invalidArgument, "batch size must be at least 1, got \(batchSize)")
        }
        let shape = sampleShape ?? dataset.sampleShape
        guard shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == dataset.featuresPerSample else {
            throw DataError(
                .shapeMismatch,
                "sample shape \(shape) does not hold the \(dataset.featuresPerSample) features of one sample (dataset sample shape \(dataset.sampleShape))"
            )
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.dropLast = dropLast
        self.shuffleSeed = shuffleSeed
        self.sampleShape = shape
        self.order = Array(0..<dataset.count)
        let first = min(batchSize, dataset.count)
        self.features = Tensor.zeros([first] + shape)
        self.labels = Tensor.zeros([first])
    }

    /// The number of batches in one epoch.
    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// Loads the next batch of the current epoch into ``features`` and ``labels``.
    ///
    /// Returns `false` (and leaves the buffers as they were) when the epoch is over; the
    /// following call starts the next epoch with a new order. This makes
    /// `while iterator.next() { … }` exactly one epoch.
    public mutating func next() -> Bool {
        if !epochStarted { startEpoch() }
        let remaining = order.count - cursor
        let take = min(batchSize, remaining)
        if take == 0 || (dropLast && take < batchSize) {
            epoch += 1
            epochStarted = false
            batchIndex = -1
            return false
        }
        fill(count: take)
        cursor += take
        batchIndex += 1
        return true
    }

    private mutating func startEpoch() {
        epochStarted = true
        cursor = 0
        batchIndex = -1
        if let shuffleSeed {
            for i in order.indices { order[i] = i }
            var rng = TesseraRandom(seed: shuffleSeed).derived(UInt64(epoch))
            rng.shuffle(&order)
        }
    }

    private mutating func fill(count take: Int) {
        let width = dataset.featuresPerSample
        if features.shape[0] != take {
            features.resize(to: [take] + sampleShape)
            labels.resize(to: [take])
        }
        let start = cursor
        let dataset = self.dataset
        let order = self.order  // a retain, not a copy: keeps the access to `self` disjoint
        order.withUnsafeBufferPointer { order in
            dataset.features.withUnsafeBufferPointer { source in
                features.withUnsafeMutableBufferPointer { out in
                    guard let src = source.baseAddress, let dst = out.baseAddress else { return }
                    for row in 0..<take {
                        (dst + row * width).update(from: src + order[start + row] * width, count: width)
                    }
                }
            }
            dataset.labels.withUnsafeBufferPointer { source in
                labels.withUnsafeMutableBufferPointer { out in
                    for row in 0..<take { out[row] = source[order[start + row]] }
                }
            }
        }
    }
}

extension Dataset {
    /// A ``BatchIterator`` over this dataset; see there for the buffer-reuse contract.
    public func batches(
        size: Int, shuffleSeed: UInt64? = nil, dropLast: Bool = false, sampleShape: [Int]? = nil
    ) throws -> BatchIterator {
        try BatchIterator(
            dataset: self, batchSize: size, shuffleSeed: shuffleSeed, dropLast: dropLast, sampleShape: sampleShape)
    }

    /// Calls `body` with each batch of one epoch (epoch 0 of the shuffle seed).
    ///
    /// The two tensors are the iterator's reused buffers: read them inside `body`, do not
    /// keep them. For several epochs, keep a ``BatchIterator`` and call `next()` in a loop so
    /// each epoch gets its own order.
    public func forEachBatch(
        size: Int, shuffleSeed: UInt64? = nil, dropLast: Bool = false, sampleShape: [Int]? = nil,
        _ body: (_ features: Tensor, _ labels: Tensor) throws -> Void
    ) throws {
        var iterator = try batches(size: size, shuffleSeed: shuffleSeed, dropLast: dropLast, sampleShape: sampleShape)
        while iterator.next() { try body(iterator.features, iterator.labels) }
    }
}
