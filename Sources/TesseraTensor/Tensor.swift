/// A dense, row-major array of `Float` with a shape.
///
/// Storage is a Swift `Array`, so a `Tensor` is a value with copy-on-write semantics: copies
/// are O(1) until one side writes. `reshaped(_:)` is therefore free, and in-place operations
/// on a uniquely referenced tensor never allocate — which is what lets the training loop
/// reuse its activation and gradient buffers from one batch to the next.
///
/// Batched data is batch-first: a matrix of `N` samples is `[N, features]`, images are
/// `[N, channels, height, width]`.
public struct Tensor: Sendable, Hashable {
    /// The extent of each dimension; the product is `count`.
    public private(set) var shape: [Int]
    /// The elements in row-major order.
    public private(set) var scalars: [Float]

    /// Wraps `scalars` as a tensor of `shape`. Traps if the counts disagree; use
    /// `init(validating:scalars:)` for untrusted input.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(
            Self.elementCount(shape) == scalars.count,
            "shape \(shape) holds \(Self.elementCount(shape)) elements but \(scalars.count) were given")
        self.shape = shape
        self.scalars = scalars
    }

    /// Wraps `scalars` as a tensor of `shape`, or explains why they do not fit.
    public init(validating shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError(.invalidArgument, "negative dimension in shape \(shape)")
        }
        guard Self.elementCount(shape) == scalars.count else {
            throw TensorError(
                .shapeMismatch,
                "shape \(shape) holds \(Self.elementCount(shape)) elements but \(scalars.count) were given")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of `shape` filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: Self.elementCount(shape)))
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }

    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }

    /// A 1-D tensor holding `values`.
    public init(_ values: [Float]) { self.init(shape: [values.count], scalars: values) }

    /// A 2-D tensor from rows of equal length.
    public init(rows: [[Float]]) {
        let width = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == width }, "rows have different lengths")
        self.init(shape: [rows.count, width], scalars: rows.flatMap { $0 })
    }

    /// The number of elements.
    public var count: Int { scalars.count }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    // MARK: Random initialisation

    /// Normal samples with the given mean and standard deviation.
    public static func randomNormal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, using rng: inout TesseraRandom
    ) -> Tensor {
        var values = [Float](repeating: 0, count: elementCount(shape))
        for i in values.indices { values[i] = mean + standardDeviation * rng.nextNormal() }
        return Tensor(shape: shape, scalars: values)
    }

    /// Uniform samples in `[lower, upper)`.
    public static func randomUniform(
        _ shape: [Int], lower: Float = 0, upper: Float = 1, using rng: inout TesseraRandom
    ) -> Tensor {
        var values = [Float](repeating: 0, count: elementCount(shape))
        for i in values.indices { values[i] = rng.nextFloat(in: lower, upper) }
        return Tensor(shape: shape, scalars: values)
    }

    /// He (Kaiming) normal initialisation, `N(0, 2 / fanIn)`: keeps the activation variance
    /// constant through ReLU layers.
    public static func heNormal(_ shape: [Int], fanIn: Int, using rng: inout TesseraRandom) -> Tensor {
        randomNormal(shape, standardDeviation: (2 / Float(max(1, fanIn))).squareRoot(), using: &rng)
    }

    /// Glorot (Xavier) uniform initialisation, `U(±sqrt(6 / (fanIn + fanOut)))`: keeps the
    /// variance of activations and gradients balanced for tanh and sigmoid layers.
    public static func glorotUniform(_ shape: [Int], fanIn: Int, fanOut: Int, using rng: inout TesseraRandom) -> Tensor
    {
        let bound = (6 / Float(max(1, fanIn + fanOut))).squareRoot()
        return randomUniform(shape, lower: -bound, upper: bound, using: &rng)
    }

    // MARK: Shape

    /// The same elements under another shape; free (shares storage until written).
    /// One dimension may be `-1` and is inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = count / known
        }
        return Tensor(shape: resolved, scalars: scalars)
    }

    /// The transpose of a matrix. Copies (in cache-friendly blocks); the training code never
    /// needs it because `matmul` takes transpose flags instead.
    public func transposed() -> Tensor {
        precondition(rank == 2, "transposed() needs a matrix, got shape \(shape)")
        let rows = shape[0]
        let cols = shape[1]
        var out = [Float](repeating: 0, count: count)
        scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let block = 32
                var r0 = 0
                while r0 < rows {
                    var c0 = 0
                    while c0 < cols {
                        for r in r0..<min(r0 + block, rows) {
                            for c in c0..<min(c0 + block, cols) {
                                dst[c * rows + r] = src[r * cols + c]
                            }
                        }
                        c0 += block
                    }
                    r0 += block
                }
            }
        }
        return Tensor(shape: [cols, rows], scalars: out)
    }

    /// Changes the shape in place, keeping the allocation when the element count is
    /// unchanged. New elements are unspecified (zero when the buffer grows). This is how
    /// layers reuse output buffers across batches.
    public mutating func resize(to newShape: [Int]) {
        let newCount = Self.elementCount(newShape)
        if newCount != scalars.count {
            if newCount < scalars.count {
                scalars.removeLast(scalars.count - newCount)
            } else {
                scalars.append(contentsOf: repeatElement(0, count: newCount - scalars.count))
            }
        }
        if shape != newShape { shape = newShape }
    }

    /// The element at a multi-dimensional index (slow path for tests and inspection).
    public subscript(index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == rank, "index \(index) does not match shape \(shape)")
        var flat = 0
        for (i, extent) in zip(index, shape) {
            precondition(i >= 0 && i < extent, "index \(index) out of range for shape \(shape)")
            flat = flat * extent + i
        }
        return flat
    }

    // MARK: Raw access

    /// Read access to the contiguous elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Write access to the contiguous elements (copies first if the storage is shared).
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}
