// Public: the wrapper is `@inlinable`, so code inlined into other modules calls OpenBLAS directly.
public import CBLAS

/// The only place in Tessera that calls OpenBLAS.
///
/// Every matrix product in the tensor engine goes through `sgemm` here, in all the
/// transpose combinations the backward passes need, so the rest of the module never sees a
/// C type. Matrices are row-major; leading dimensions are row strides in elements.
@usableFromInline
enum BLAS {
    /// `C = alpha * op(A) * op(B) + beta * C` where `op(A)` is `m×k` and `op(B)` is `k×n`.
    @inlinable
    static func sgemm(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }

    /// `y += alpha * x`.
    @inlinable
    static func saxpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        cblas_saxpy(blasint(count), alpha, x, 1, y, 1)
    }

    /// `x *= alpha`.
    @inlinable
    static func sscal(count: Int, alpha: Float, x: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        cblas_sscal(blasint(count), alpha, x, 1)
    }

    /// `x · y`.
    @inlinable
    static func sdot(count: Int, x: UnsafePointer<Float>, y: UnsafePointer<Float>) -> Float {
        guard count > 0 else { return 0 }
        return cblas_sdot(blasint(count), x, 1, y, 1)
    }

    /// Euclidean norm of `x`, computed by OpenBLAS without overflow for large entries.
    @inlinable
    static func snrm2(count: Int, x: UnsafePointer<Float>) -> Float {
        guard count > 0 else { return 0 }
        return cblas_snrm2(blasint(count), x, 1)
    }

    static var threadCount: Int {
        Int(openblas_get_num_threads())
    }

    static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }
}

/// Process-wide settings of the tensor engine.
public enum TensorRuntime {
    /// Number of threads OpenBLAS uses for one matrix product.
    ///
    /// Training is bit-for-bit reproducible for a given seed *and* thread count: the split of
    /// a product over threads can change the order of floating-point additions.
    public static var threadCount: Int { BLAS.threadCount }

    /// Sets the number of OpenBLAS threads for every later product in this process.
    public static func setThreadCount(_ count: Int) { BLAS.setThreadCount(count) }

    /// Runs `body` with `count` OpenBLAS threads, then restores the previous count.
    public static func withThreadCount<Result>(
        _ count: Int, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Result
    ) async rethrows -> Result {
        let previous = threadCount
        setThreadCount(count)
        defer { setThreadCount(previous) }
        return try await body()
    }
}
