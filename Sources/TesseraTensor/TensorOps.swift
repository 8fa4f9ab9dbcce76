import Foundation

// MARK: Matrix products

extension Tensor {
    /// `op(a) · op(b)` for matrices, through `cblas_sgemm`. `transposeA` / `transposeB` read
    /// the operand as transposed without copying it.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        precondition(
            k == kb,
            "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        var out = Tensor.zeros([m, n])
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(
                        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                        a: pa.baseAddress!, lda: a.shape[1], b: pb.baseAddress!, ldb: b.shape[1],
                        beta: 0, c: pc.baseAddress!, ldc: n)
                }
            }
        }
        return out
    }

    /// Dot product of two tensors of the same element count (`cblas_sdot`).
    public func dot(_ other: Tensor) -> Float {
        precondition(count == other.count, "dot of \(shape) and \(other.shape)")
        return withUnsafeBufferPointer { x in
            other.withUnsafeBufferPointer { y in BLAS.sdot(count: count, x: x.baseAddress!, y: y.baseAddress!) }
        }
    }

    /// Euclidean norm of all elements (`cblas_snrm2`).
    public var norm: Float {
        withUnsafeBufferPointer { BLAS.snrm2(count: count, x: $0.baseAddress!) }
    }

    /// `self += alpha * other` (`cblas_saxpy`).
    public mutating func addScaled(_ other: Tensor, alpha: Float) {
        precondition(count == other.count, "addScaled of \(shape) and \(other.shape)")
        let n = count
        other.withUnsafeBufferPointer { x in
            withUnsafeMutableBufferPointer { y in
                BLAS.saxpy(count: n, alpha: alpha, x: x.baseAddress!, y: y.baseAddress!)
            }
        }
    }

    /// `self *= alpha` (`cblas_sscal`).
    public mutating func scale(by alpha: Float) {
        let n = count
        withUnsafeMutableBufferPointer { BLAS.sscal(count: n, alpha: alpha, x: $0.baseAddress!) }
    }
}

// MARK: Element-wise operations

extension Tensor {
    /// Applies `transform` to every element.
    public func map(_ transform: (Float) -> Float) -> Tensor {
        var out = self
        out.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = transform(p[i]) }
        }
        return out
    }

    /// Combines two tensors of the same shape element by element.
    public func zipWith(_ other: Tensor, _ combine: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "element-wise operation on \(shape) and \(other.shape)")
        var out = self
        other.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = combine(p[i], q[i]) }
            }
        }
        return out
    }

    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipWith(rhs, +) }
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipWith(rhs, -) }
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipWith(rhs, *) }
    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.zipWith(rhs, /) }
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 + rhs } }
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 - rhs } }
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 * rhs } }
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.map { lhs * $0 } }
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs.map { $0 / rhs } }
    public static prefix func - (operand: Tensor) -> Tensor { operand.map { -$0 } }

    public static func += (lhs: inout Tensor, rhs: Tensor) { lhs.addScaled(rhs, alpha: 1) }
    public static func -= (lhs: inout Tensor, rhs: Tensor) { lhs.addScaled(rhs, alpha: -1) }
    public static func *= (lhs: inout Tensor, rhs: Float) { lhs.scale(by: rhs) }

    /// Element-wise `exp`.
    public func exp() -> Tensor { map { Foundation.exp($0) } }
    /// Element-wise natural logarithm.
    public func log() -> Tensor { map { Foundation.log($0) } }
    /// Element-wise square root.
    public func squareRoot() -> Tensor { map { $0.squareRoot() } }
    /// Element-wise `max(x, 0)`.
    public func relu() -> Tensor { map { max($0, 0) } }
    /// Element-wise clamp to `[lower, upper]`.
    public func clamped(to lower: Float, _ upper: Float) -> Tensor { map { min(max($0, lower), upper) } }
}

// MARK: Reductions

extension Tensor {
    /// Sum of all elements, accumulated in `Double` so long vectors keep their precision.
    public func sum() -> Float {
        withUnsafeBufferPointer { p in
            var total: Double = 0
            for x in p { total += Double(x) }
            return Float(total)
        }
    }

    /// Mean of all elements.
    public func mean() -> Float { count == 0 ? 0 : sum() / Float(count) }

    /// Largest element.
    public func maxValue() -> Float { scalars.max() ?? -.infinity }

    /// Smallest element.
    public func minValue() -> Float { scalars.min() ?? .infinity }

    /// Sums a matrix along `axis` (0: over rows → `[cols]`; 1: over columns → `[rows]`).
    public func sum(alongAxis axis: Int) -> Tensor {
        precondition(rank == 2 && (axis == 0 || axis == 1), "sum(alongAxis:) needs a matrix and axis 0 or 1")
        let rows = shape[0]
        let cols = shape[1]
        var out = Tensor.zeros([axis == 0 ? cols : rows])
        withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                if axis == 0 {
                    for r in 0..<rows { for c in 0..<cols { o[c] += p[r * cols + c] } }
                } else {
                    for r in 0..<rows {
                        var s: Float = 0
                        for c in 0..<cols { s += p[r * cols + c] }
                        o[r] = s
                    }
                }
            }
        }
        return out
    }

    /// Index of the largest element in each row of a matrix (first one on ties); for a 1-D
    /// tensor, a single index.
    public func argmax() -> [Int] {
        precondition(rank == 1 || rank == 2, "argmax needs a vector or matrix, got \(shape)")
        let rows = rank == 2 ? shape[0] : 1
        let cols = rank == 2 ? shape[1] : shape[0]
        guard cols > 0 else { return [] }
        return withUnsafeBufferPointer { p in
            (0..<rows).map { r in
                var best = 0
                var bestValue = p[r * cols]
                for c in 1..<cols where p[r * cols + c] > bestValue {
                    best = c
                    bestValue = p[r * cols + c]
                }
                return best
            }
        }
    }
}
