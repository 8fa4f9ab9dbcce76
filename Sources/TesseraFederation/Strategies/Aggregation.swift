/// The aggregation maths, as pure functions on flat parameter vectors.
///
/// Nothing here keeps state or knows about rounds: each function takes vectors and returns a
/// vector, so each can be tested on its own against hand-computed values. The strategies
/// (``FedAvg``, ``FedAdam``, ``Krum``, …) call these and add their server optimiser.
///
/// Sums are accumulated in `Double` and rounded to `Float` once at the end, so long cohorts do
/// not lose precision; the sample-weighted mean of a round's updates (``weightedMean(_:)``) is
/// summed exactly in bins, so it does not depend on the updates' order at all.
///
/// The robust rules live next to their strategies: ``coordinateMedian(_:)`` in `Median.swift`,
/// ``trimmedMean(_:trimFraction:)`` in `TrimmedMean.swift`, ``krumScores(_:byzantine:)``,
/// ``krum(_:byzantine:)`` and ``multiKrum(_:byzantine:selecting:)`` in `Krum.swift`.
public enum Aggregation {
    /// The weighted mean `Σ w_k x_k / Σ w_k`.
    ///
    /// - Throws: ``AggregationError`` for no vectors, vectors of different lengths, non-finite
    ///   values, a negative or non-finite weight, a weight count that does not match, or
    ///   weights that sum to zero.
    public static func weightedMean(_ vectors: [[Float]], weights: [Double]) throws(AggregationError) -> [Float] {
        try checkVectors(vectors)
        return try checkedWeightedMean(vectors, weights: weights)
    }

    /// ``weightedMean(_:weights:)`` of vectors already checked by ``checkVectors(_:labels:)``.
    private static func checkedWeightedMean(_ vectors: [[Float]], weights: [Double]) throws(AggregationError) -> [Float]
    {
        guard weights.count == vectors.count else {
            throw AggregationError(
                .mismatchedLengths,
                "Got \(vectors.count) vectors but \(weights.count) weights; give one weight per vector.")
        }
        for (index, weight) in weights.enumerated() where !(weight.isFinite && weight >= 0) {
            throw AggregationError(
                .invalidWeight, "Weight \(index) is \(weight); weights must be finite and non-negative.")
        }
        let total = weights.reduce(0, +)
        guard total > 0 else {
            throw AggregationError(
                .invalidWeight, "All \(weights.count) weights are zero, so there is nothing to average.")
        }
        // Element-wise over buffers (no bounds checks, so the loops vectorise), one tile of
        // coordinates at a time: the tile's Double sums stay in L1 while every vector is added
        // to them, instead of a model-sized Double array (8 MB for 1M parameters) going through
        // memory once per vector. Each coordinate is still summed over the vectors in order, so
        // the result is the same to the bit. On a 1M-parameter model with 10 updates this is
        // the coordinator's aggregation step, on the round's critical path.
        let count = vectors[0].count
        let tileLength = 2048
        var tile = [Double](repeating: 0, count: tileLength)
        return [Float](unsafeUninitializedCapacity: count) { mean, initialized in
            tile.withUnsafeMutableBufferPointer { tile in
                var start = 0
                while start < count {
                    let length = min(tileLength, count - start)
                    let sums = UnsafeMutableBufferPointer(rebasing: tile[0..<length])
                    sums.update(repeating: 0)
                    for (vector, weight) in zip(vectors, weights) where weight > 0 {
                        vector.withUnsafeBufferPointer { vector in
                            let part = UnsafeBufferPointer(rebasing: vector[start..<(start + length)])
                            accumulate(part, weight: weight, into: sums)
                        }
                    }
                    let means = UnsafeMutableBufferPointer(rebasing: mean[start..<(start + length)])
                    divide(UnsafeBufferPointer(sums), by: total, into: means)
                    start += length
                }
            }
            initialized = count
        }
    }

    /// `sum[j] += weight · x[j]` for every coordinate, in Double: a tile of
    /// ``weightedMean(_:weights:)``. `vector` must be as long as `sum`.
    @inline(__always)
    static func accumulate(
        _ vector: UnsafeBufferPointer<Float>, weight: Double, into sum: UnsafeMutableBufferPointer<Double>
    ) {
        precondition(vector.count == sum.count, "accumulate: \(vector.count) values into a sum of \(sum.count)")
        for j in 0..<sum.count { sum[j] += weight * Double(vector[j]) }
    }

    /// `mean[j] = Float(sum[j] / total)` for every coordinate: a weighted sum's mean.
    @inline(__always)
    static func divide(
        _ sum: UnsafeBufferPointer<Double>, by total: Double, into mean: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(sum.count == mean.count, "divide: \(sum.count) sums into \(mean.count) values")
        for j in 0..<sum.count { mean[j] = Float(sum[j] / total) }
    }

    /// The sample-weighted mean update `Σ n_k Δ_k / Σ n_k` of a plaintext round (FedAvg's
    /// aggregate, McMahan et al. 2017).
    ///
    /// Summed with ``ReproducibleSum``: the result does not depend on the order of `updates`, to
    /// the bit, and equals the coordinator's running sum of the same updates (``PlaintextSum``).
    public static func weightedMean(_ updates: [ClientUpdate]) throws(AggregationError) -> [Float] {
        try checkVectors(updates.map(\.delta), labels: updates.map(\.participant))
        for update in updates where !(0...Int(UInt32.max)).contains(update.sampleCount) {
            throw AggregationError(
                .invalidWeight,
                "\(label(update.participant, fallback: "An update")) reports \(update.sampleCount) samples; "
                    + "sample counts must lie in 0...\(UInt32.max).")
        }
        guard updates.contains(where: { $0.sampleCount > 0 }) else {
            throw AggregationError(
                .invalidWeight, "All \(updates.count) updates report zero samples, so there is nothing to average.")
        }
        var sum = ReproducibleSum(count: updates[0].delta.count)
        for update in updates { sum.add(update.delta, weight: UInt32(update.sampleCount)) }
        return sum.mean
    }

    /// The unweighted mean `Σ x_k / n` (Multi-Krum's average of the selected updates).
    public static func mean(_ vectors: [[Float]]) throws(AggregationError) -> [Float] {
        try weightedMean(vectors, weights: [Double](repeating: 1, count: vectors.count))
    }

    /// The plain server step `x + η d`: FedAvg's update with server learning rate `η` (Reddi
    /// et al. 2021, Algorithm 1 with server SGD), and the step every robust rule takes after
    /// aggregating.
    public static func serverStep(
        global: [Float], direction: [Float], learningRate: Double
    ) throws(AggregationError) -> [Float] {
        try checkSameLength(global: global, update: direction)
        return [Float](unsafeUninitializedCapacity: global.count) { next, initialized in
            global.withUnsafeBufferPointer { global in
                direction.withUnsafeBufferPointer { direction in
                    for j in 0..<global.count {
                        next[j] = Float(Double(global[j]) + learningRate * Double(direction[j]))
                    }
                }
            }
            initialized = global.count
        }
    }

    // MARK: - Input checks shared by every rule

    /// Non-empty, equal lengths, finite.
    static func checkVectors(_ vectors: [[Float]], labels: [String?] = []) throws(AggregationError) {
        guard let first = vectors.first else {
            throw AggregationError(
                .emptyInput, "No updates to aggregate: every selected participant dropped out or failed.")
        }
        guard !first.isEmpty else {
            throw AggregationError(.emptyInput, "The updates are empty vectors; the model has no parameters.")
        }
        for (index, vector) in vectors.enumerated() {
            let name = label(index < labels.count ? labels[index] : nil, fallback: "Update \(index)")
            guard vector.count == first.count else {
                throw AggregationError(
                    .mismatchedLengths,
                    "\(name) has \(vector.count) coordinates but update 0 has \(first.count); all participants must "
                        + "train the same model.")
            }
            try checkFinite(vector, what: name)
        }
    }

    static func checkFinite(_ vector: [Float], what: String) throws(AggregationError) {
        guard !vector.isEmpty else { throw AggregationError(.emptyInput, "\(what) is an empty vector.") }
        if let index = firstNonFiniteIndex(vector) {
            throw AggregationError(
                .nonFiniteValue,
                "\(what) holds \(vector[index]) at coordinate \(index); local training probably diverged "
                    + "(lower the learning rate or set local_training.clip_norm).")
        }
    }

    /// The Euclidean norm of `vector`, summed in Double so that no finite update overflows it.
    static func l2Norm(_ vector: [Float]) -> Double {
        vector.withUnsafeBufferPointer { values in
            var sum = 0.0
            for value in values { sum += Double(value) * Double(value) }
            return sum.squareRoot()
        }
    }

    /// The index of the first infinity or NaN in `vector`, if any.
    ///
    /// Scans in blocks with integer arithmetic that the compiler vectorises: a value is not
    /// finite exactly when its exponent bits are all ones, and adding one exponent step to those
    /// bits then carries into the sign position. Only a block that has such a value is searched
    /// again for the index.
    static func firstNonFiniteIndex(_ vector: [Float]) -> Int? {
        vector.withUnsafeBufferPointer { values in
            values.withMemoryRebound(to: UInt32.self) { bits in
                let block = 4096
                var start = 0
                while start < bits.count {
                    let end = min(start + block, bits.count)
                    var carry: UInt32 = 0
                    for j in start..<end { carry |= (bits[j] & 0x7F80_0000) &+ 0x0080_0000 }
                    if carry & 0x8000_0000 != 0 {
                        return (start..<end).first { !values[$0].isFinite }
                    }
                    start = end
                }
                return nil
            }
        }
    }

    static func checkSameLength(global: [Float], update: [Float]) throws(AggregationError) {
        guard global.count == update.count else {
            throw AggregationError(
                .mismatchedLengths,
                "The global model has \(global.count) parameters but the update has \(update.count).")
        }
    }

    private static func label(_ participant: String?, fallback: String) -> String {
        participant.map { "The update of participant \($0)" } ?? fallback
    }
}
