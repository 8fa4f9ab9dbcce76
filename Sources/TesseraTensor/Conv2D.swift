import Foundation
import TesseraSupport

/// A 2-D convolution over batch-first `[N, C, H, W]` images (cross-correlation, as in
/// PyTorch's `nn.Conv2d`), computed as im2col + matrix products.
///
/// **Parameters.** `weight` is `[filters, C, k, k]` and `bias` is `[filters]`, PyTorch's
/// layout, so exported safetensors load into `nn.Conv2d` unchanged. Read as a matrix, the
/// weight is `W[filters, C·k·k]` with the patch index `(c, ki, kj)` in row-major order.
///
/// **The im2col scheme.** Every forward pass unrolls the *whole batch* once into a column
/// matrix `cols[C·k·k, N·P]` (`P = outH·outW`): row `(c, ki, kj)`, column `(n, oy, ox)` holds
/// input pixel `(n, c, oy·s − p + ki, ox·s − p + kj)`, or 0 in the padding. Sample `n` owns
/// the column block `n·P ..< (n+1)·P`. The forward pass keeps it for backward, so
///
/// - forward is `Y = W · cols`;
/// - the weight gradient is `dW = dY · colsᵀ` and the bias gradient the sums of `dY`;
/// - the input gradient is `dcols = Wᵀ · dY` followed by col2im, which adds every column
///   entry back onto the pixel it was copied from.
///
/// **How the products are cut** (see `Conv2D.perSampleMinimumPlane`; the measurements behind
/// these choices are in `Benchmarks/RESULTS.md`):
/// - Small planes (`P` < 512, e.g. the 14×14 second layer of the McMahan CNN): one product
///   for the whole batch, `W · cols → Y'[filters, N·P]`, then a cheap copy into NCHW that
///   adds the bias (each copied run is a whole output plane); backward regroups `dY` the same
///   way (`dY'[filters, N·P]`) and runs one `dW` product.
/// - Large planes (`P` ≥ 512, e.g. the 28×28 first layer): one product per sample, written
///   straight into NCHW (`W · cols_n` is already `[filters, P]`) and, for `dW`, read straight
///   from NCHW with `beta = 1` accumulation. Each product is big enough on its own, and no
///   regrouping copy is needed; as a single product `dW` would have a tiny output over a huge
///   inner dimension, which OpenBLAS cannot split over its threads.
/// - `dcols` is produced for eight samples at a time into a private scratch buffer and
///   folded back by col2im at once, so it never makes the round trip through memory at full
///   batch size.
///
/// **Memory.** All buffers (columns, regrouped products, `dcols`) are private, reused from
/// batch to batch, and only grow when a larger batch arrives. The columns survive backward,
/// so backward may be repeated on the same forward; it must follow a forward of the same
/// batch size (the `Layer` contract), and traps otherwise.
///
/// **Threads.** im2col (split by rows of the column matrix), col2im (split by input channel),
/// and the layout copies are spread over the cores with `ParallelKernel`. Every output
/// element is written by exactly one task, in a fixed order, so the results do not depend on
/// scheduling: training stays bit-for-bit reproducible for a given seed and thread count.
public final class Conv2D: Layer {
    public let kind = "conv2d"
    public let filters: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    private let initialization: Dense.Initialization

    /// Shapes fixed by `build`.
    private var geometry = ConvolutionGeometry()
    /// `cols[C·k·k, N·P]` of the last forward.
    private var columns: [Float] = []
    /// `Y'[filters, N·P]` in forward, `dY'[filters, N·P]` in backward (small planes only).
    private var regrouped: [Float] = []
    /// `dcols` for one group of `inputGradientGroup` samples.
    private var columnGradients: [Float] = []
    /// Batch size of the forward pass whose columns `columns` holds.
    private var columnsBatch: Int?
    /// The batch size for which the padding runs of `columns` (the parts of each run that a
    /// shifted copy never writes: `..<lo` and `hi...`) are known to be 0. Only im2col writes
    /// `columns`, and where those parts lie depends on the geometry and the batch size alone,
    /// so after one full pass they need not be zeroed again.
    private var paddingZeroedFor: Int?

    /// Output planes at least this large get one product per sample (see the type's notes).
    static let perSampleMinimumPlane = 512
    /// Samples per `dcols` product and col2im pass in backward.
    static let inputGradientGroup = 8

    public init(
        filters: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        initialization: Dense.Initialization = .he
    ) {
        precondition(filters > 0, "a Conv2D layer needs at least one filter")
        precondition(kernelSize > 0, "a Conv2D kernel needs a positive size")
        precondition(stride > 0, "a Conv2D stride must be positive")
        precondition(padding >= 0, "a Conv2D padding cannot be negative")
        self.filters = filters
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.initialization = initialization
    }

    public func build(inputShape: [Int]) throws -> [Int] {
        try requireShape(inputShape, rank: 3, layer: "Conv2D")
        let (channels, height, width) = (inputShape[0], inputShape[1], inputShape[2])
        let k = kernelSize
        guard height + 2 * padding >= k, width + 2 * padding >= k else {
            throw TensorError(
                .shapeMismatch,
                "Conv2D kernel \(k)×\(k) is larger than the padded input \(height + 2 * padding)×\(width + 2 * padding) "
                    + "(input [C, H, W] = \(inputShape), padding \(padding)); use a smaller kernel or more padding")
        }
        geometry = ConvolutionGeometry(
            channels: channels, height: height, width: width, filters: filters, kernel: k, stride: stride,
            padding: padding,
            outputHeight: (height + 2 * padding - k) / stride + 1,
            outputWidth: (width + 2 * padding - k) / stride + 1)
        columnsBatch = nil
        paddingZeroedFor = nil
        return [filters, geometry.outputHeight, geometry.outputWidth]
    }

    public var parameterSpecs: [ParameterSpec] {
        let g = geometry
        let weightInit: ParameterInitializer =
            switch initialization {
            case .he: .heNormal(fanIn: g.patch)
            // PyTorch's convention: the fan-out counts each output channel's k×k taps.
            case .glorot: .glorotUniform(fanIn: g.patch, fanOut: filters * kernelSize * kernelSize)
            }
        return [
            ParameterSpec(
                name: "weight", shape: [filters, g.channels, kernelSize, kernelSize], initializer: weightInit),
            ParameterSpec(name: "bias", shape: [filters], initializer: .zeros),
        ]
    }

    public func forward(
        _ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool
    ) {
        let g = geometry
        let batch = input.shape[0]
        precondition(
            input.rank == 4 && input.shape[1] == g.channels && input.shape[2] == g.height && input.shape[3] == g.width,
            "Conv2D was built for [C, H, W] = [\(g.channels), \(g.height), \(g.width)], got input \(input.shape)")
        let plane = g.outputPlane
        let width = batch * plane
        let perSample = plane >= Self.perSampleMinimumPlane || batch == 1
        if columns.count < g.patch * width { paddingZeroedFor = nil }
        growIfNeeded(&columns, to: g.patch * width)
        let paddingIsZero = paddingZeroedFor == batch
        if !perSample { growIfNeeded(&regrouped, to: g.filters * width) }
        output.resize(to: [batch, g.filters, g.outputHeight, g.outputWidth])
        let weight = parameters.baseAddress!
        let bias = weight + g.filters * g.patch

        input.withUnsafeBufferPointer { x in
            columns.withUnsafeMutableBufferPointer { cols in
                let x = x.baseAddress!
                let cols = cols.baseAddress!
                ParallelKernel.forEachChunk(of: g.patch, workPerItem: width) { rows in
                    g.im2col(input: x, rows: rows, batch: batch, columns: cols, paddingIsZero: paddingIsZero)
                }
                output.withUnsafeMutableBufferPointer { out in
                    let out = out.baseAddress!
                    if perSample {
                        // `W · cols_n` is `[filters, P]`, sample n's NCHW block: sgemm adds onto the bias.
                        for n in 0..<batch {
                            let target = out + n * g.filters * plane
                            for f in 0..<g.filters { (target + f * plane).initialize(repeating: bias[f], count: plane) }
                            BLAS.sgemm(
                                transposeA: false, transposeB: false, m: g.filters, n: plane, k: g.patch, alpha: 1,
                                a: weight, lda: g.patch, b: cols + n * plane, ldb: width, beta: 1, c: target, ldc: plane
                            )
                        }
                        return
                    }
                    regrouped.withUnsafeMutableBufferPointer { y in
                        let y = y.baseAddress!
                        BLAS.sgemm(
                            transposeA: false, transposeB: false, m: g.filters, n: width, k: g.patch, alpha: 1,
                            a: weight, lda: g.patch, b: cols, ldb: width, beta: 0, c: y, ldc: width)
                        ParallelKernel.forEachChunk(of: batch, workPerItem: g.filters * plane) { samples in
                            g.scatterToNCHW(y, into: out, bias: bias, batch: batch, samples: samples)
                        }
                    }
                }
            }
        }
        columnsBatch = batch
        paddingZeroedFor = batch
    }

    public func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor,
        parameters: UnsafeBufferPointer<Float>, parameterGradients: UnsafeMutableBufferPointer<Float>,
        inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        let g = geometry
        let batch = input.shape[0]
        precondition(
            columnsBatch == batch,
            "Conv2D.backward needs the columns of a forward pass on this batch (\(batch) samples); call forward first")
        precondition(
            outputGradient.count == batch * g.filters * g.outputPlane,
            "Conv2D output gradient \(outputGradient.shape) does not match its output [\(batch), \(g.filters), "
                + "\(g.outputHeight), \(g.outputWidth)]")
        let plane = g.outputPlane
        let width = batch * plane
        let perSample = plane >= Self.perSampleMinimumPlane
        let group = min(batch, Self.inputGradientGroup)
        let weight = parameters.baseAddress!
        let gradWeight = parameterGradients.baseAddress!
        let gradBias = gradWeight + g.filters * g.patch
        if !perSample { growIfNeeded(&regrouped, to: g.filters * width) }
        if computeInputGradient {
            growIfNeeded(&columnGradients, to: g.patch * group * plane)
            inputGradient.resize(to: input.shape)
        }

        outputGradient.withUnsafeBufferPointer { dy in
            columns.withUnsafeBufferPointer { cols in
                regrouped.withUnsafeMutableBufferPointer { dyt in
                    let dy = dy.baseAddress!
                    let cols = cols.baseAddress!
                    // Where column block n of dY lives, and the stride between its filter rows.
                    let (gradient, gradientStride): (UnsafePointer<Float>, Int)
                    if perSample {
                        // dW = Σ_n dY_n · cols_nᵀ, reading dY_n [F, P] straight from NCHW.
                        for n in 0..<batch {
                            BLAS.sgemm(
                                transposeA: false, transposeB: true, m: g.filters, n: g.patch, k: plane, alpha: 1,
                                a: dy + n * g.filters * plane, lda: plane, b: cols + n * plane, ldb: width,
                                beta: n == 0 ? 0 : 1, c: gradWeight, ldc: g.patch)
                        }
                        for f in 0..<g.filters {
                            var total: Float = 0
                            for n in 0..<batch { total += laneSum(dy + (n * g.filters + f) * plane, count: plane) }
                            gradBias[f] = total
                        }
                        (gradient, gradientStride) = (dy, plane)
                    } else {
                        // dY [N, F, P] → dY' [F, N·P] (and db), then dW = dY' · colsᵀ.
                        let dyt = dyt.baseAddress!
                        ParallelKernel.forEachChunk(of: g.filters, workPerItem: width) { rows in
                            g.gatherFromNCHW(dy, into: dyt, biasGradient: gradBias, batch: batch, filters: rows)
                        }
                        let chunk = Self.weightGradientChunk(
                            outputs: g.filters * g.patch, depth: width, samplePlane: plane)
                        var start = 0
                        while start < width {
                            let depth = min(chunk, width - start)
                            BLAS.sgemm(
                                transposeA: false, transposeB: true, m: g.filters, n: g.patch, k: depth, alpha: 1,
                                a: dyt + start, lda: width, b: cols + start, ldb: width, beta: start == 0 ? 0 : 1,
                                c: gradWeight, ldc: g.patch)
                            start += depth
                        }
                        (gradient, gradientStride) = (UnsafePointer(dyt), width)
                    }
                    guard computeInputGradient else { return }
                    columnGradients.withUnsafeMutableBufferPointer { dcols in
                        inputGradient.withUnsafeMutableBufferPointer { dx in
                            let dcols = dcols.baseAddress!
                            let dx = dx.baseAddress!
                            var first = 0
                            while first < batch {
                                let count = min(group, batch - first)
                                let groupWidth = count * plane
                                // dcols = Wᵀ · dY for samples first ..< first + count.
                                if perSample {
                                    for n in 0..<count {
                                        BLAS.sgemm(
                                            transposeA: true, transposeB: false, m: g.patch, n: plane, k: g.filters,
                                            alpha: 1, a: weight, lda: g.patch,
                                            b: gradient + (first + n) * g.filters * plane, ldb: gradientStride,
                                            beta: 0, c: dcols + n * plane, ldc: groupWidth)
                                    }
                                } else {
                                    BLAS.sgemm(
                                        transposeA: true, transposeB: false, m: g.patch, n: groupWidth, k: g.filters,
                                        alpha: 1, a: weight, lda: g.patch, b: gradient + first * plane,
                                        ldb: gradientStride, beta: 0, c: dcols, ldc: groupWidth)
                                }
                                ParallelKernel.forEachChunk(
                                    of: g.channels, workPerItem: g.kernel * g.kernel * groupWidth
                                ) { channels in
                                    g.col2im(
                                        columns: dcols, samples: first..<(first + count), channels: channels,
                                        inputGradient: dx)
                                }
                                first += count
                            }
                        }
                    }
                }
            }
        }
    }

    /// How many columns of `dY'`/`cols` one weight-gradient product should take.
    ///
    /// OpenBLAS splits a product over its threads along the *output*, never along the inner
    /// dimension. When the output is tiny and the inner dimension huge, one call runs at a
    /// fraction of peak, while a chain of calls over a few thousand columns each, accumulated
    /// with `beta = 1`, runs near the single-core peak. Large outputs keep one call.
    static func weightGradientChunk(outputs: Int, depth: Int, samplePlane: Int) -> Int {
        guard outputs < 16_384 else { return depth }
        // Whole samples, at least about 2 048 columns per call.
        return max(1, 2_048 / max(1, samplePlane)) * samplePlane
    }
}

/// Grows `buffer` to at least `count` elements; never shrinks it, so alternating batch sizes
/// (a short last batch) do not reallocate.
@inline(__always)
func growIfNeeded(_ buffer: inout [Float], to count: Int) {
    if buffer.count < count {
        buffer = [Float](repeating: 0, count: count)
    }
}

/// The shapes of one convolution and the loops that move data between NCHW images and the
/// column matrix. A value type holding only integers, so the kernels capture it by copy and
/// read no class state in their inner loops.
struct ConvolutionGeometry: Sendable {
    var channels = 0, height = 0, width = 0
    var filters = 0, kernel = 1, stride = 1, padding = 0
    var outputHeight = 0, outputWidth = 0

    /// `C·k·k`: the length of one unrolled patch (rows of the column matrix).
    var patch: Int { channels * kernel * kernel }
    /// `outH·outW`: the output positions of one sample.
    var outputPlane: Int { outputHeight * outputWidth }

    /// The output indices `o` in `0..<outputExtent` whose input index `o·s − p + offset`
    /// falls inside `0..<inputExtent`; outside them the patch reads padding.
    @inline(__always)
    func validRange(offset: Int, inputExtent: Int, outputExtent: Int) -> Range<Int> {
        // o·s ≥ p − offset  and  o·s ≤ inputExtent − 1 + p − offset
        let low = padding - offset
        let lower = low <= 0 ? 0 : (low + stride - 1) / stride
        let high = inputExtent - 1 + padding - offset
        let upper = high < 0 ? 0 : min(outputExtent, high / stride + 1)
        return lower < upper ? lower..<upper : 0..<0
    }

    /// Whether every run of the column matrix is its input plane shifted by a constant flat
    /// offset: stride 1 with "same" padding (`outH = H`, `outW = W`, as in the McMahan CNN).
    /// Then a run is one contiguous copy plus a few zeroed border columns, instead of one
    /// short copy per output row.
    var isShiftedCopy: Bool { stride == 1 && outputHeight == height && outputWidth == width }

    /// For run `(ki, kj)` of a shifted-copy geometry: the flat offset `d` such that `run[j]`
    /// reads `plane[j + d]`, the column shift `kj − p`, and the part `lo..<hi` of the run whose
    /// source lies inside the plane. Outside `lo..<hi`, and in the border columns, the run
    /// reads padding.
    @inline(__always)
    func shift(ki: Int, kj: Int) -> (offset: Int, columnShift: Int, lo: Int, hi: Int) {
        let (h, w) = (height, width)
        let dy = ki - padding
        let dx = kj - padding
        let d = dy * w + dx
        let lo = max(max(0, -dy) * w, -d)
        let hi = min(min(h, h - dy) * w, h * w - d)
        return (d, dx, lo, max(lo, hi))
    }

    /// Writes rows `rows` of `cols[C·k·k, N·P]` for the whole batch, row by row: each task
    /// writes long sequential stretches (a row is `N·P` floats), and the planes of one
    /// channel stay in cache while its `k²` rows are written.
    func im2col(
        input: UnsafePointer<Float>, rows: Range<Int>, batch: Int, columns: UnsafeMutablePointer<Float>,
        paddingIsZero: Bool
    ) {
        let (k, h, w) = (kernel, height, width)
        let plane = outputPlane
        let rowLength = batch * plane
        for r in rows {
            let c = r / (k * k)
            let ki = (r / k) % k
            let kj = r % k
            let row = columns + r * rowLength
            for n in 0..<batch {
                fillRun(
                    row + n * plane, from: input + (n * channels + c) * h * w, ki: ki, kj: kj,
                    paddingIsZero: paddingIsZero)
            }
        }
    }

    /// One run of the column matrix: the `P` input pixels `(oy·s − p + ki, ox·s − p + kj)` of
    /// one input plane, 0 where they fall in the padding.
    @inline(__always)
    func fillRun(
        _ run: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, ki: Int, kj: Int, paddingIsZero: Bool
    ) {
        let (s, p) = (stride, padding)
        let (h, w, oh, ow) = (height, width, outputHeight, outputWidth)
        let rows = validRange(offset: ki, inputExtent: h, outputExtent: oh)
        if isShiftedCopy {
            let (d, dx, lo, hi) = shift(ki: ki, kj: kj)
            (run + lo).update(from: source + d + lo, count: hi - lo)
            // The copy also wrote the wrapped border columns; they are zeroed every time.
            zeroBorderColumns(run, rows: rows, columnShift: dx)
            if !paddingIsZero {
                run.initialize(repeating: 0, count: lo)
                (run + hi).initialize(repeating: 0, count: h * w - hi)
            }
            return
        }
        let cols = validRange(offset: kj, inputExtent: w, outputExtent: ow)
        // Output rows whose input row lies in the padding.
        if rows.lowerBound > 0 { run.initialize(repeating: 0, count: rows.lowerBound * ow) }
        if rows.upperBound < oh {
            (run + rows.upperBound * ow).initialize(repeating: 0, count: (oh - rows.upperBound) * ow)
        }
        let firstX = cols.lowerBound * s - p + kj
        let valid = cols.count
        for oy in rows {
            let dst = run + oy * ow
            let src = source + (oy * s - p + ki) * w + firstX
            for ox in 0..<cols.lowerBound { dst[ox] = 0 }
            let out = dst + cols.lowerBound
            if s == 1 {
                for i in 0..<valid { out[i] = src[i] }
            } else {
                for i in 0..<valid { out[i] = src[i * s] }
            }
            for ox in cols.upperBound..<ow { dst[ox] = 0 }
        }
    }

    /// In a shifted-copy run, zeroes the columns whose source pixel lies left or right of
    /// the plane (the flat shift wrapped them onto the neighbouring row).
    @inline(__always)
    func zeroBorderColumns(_ run: UnsafeMutablePointer<Float>, rows: Range<Int>, columnShift dx: Int) {
        guard dx != 0 else { return }
        let w = width
        let (start, count) = dx < 0 ? (0, min(w, -dx)) : (max(0, w - dx), min(w, dx))
        for oy in rows {
            let row = run + oy * w + start
            for i in 0..<count { row[i] = 0 }
        }
    }

    /// The adjoint of `im2col` for the input channels `channelRange` of `samples`, reading
    /// `dcols[C·k·k, samples.count·P]` (sample `samples.lowerBound` in the first column block).
    ///
    /// Each `(n, c)` plane of the input gradient is zeroed and then accumulated, `k²` runs in
    /// a fixed order, by the one task that owns channel `c`. In a shifted-copy geometry the
    /// entries that belong to the padding are zeroed first (`dcols` is scratch), so each run
    /// is added back with one contiguous loop.
    func col2im(
        columns: UnsafeMutablePointer<Float>, samples: Range<Int>, channels channelRange: Range<Int>,
        inputGradient: UnsafeMutablePointer<Float>
    ) {
        let (k, s, p) = (kernel, stride, padding)
        let (h, w, oh, ow) = (height, width, outputHeight, outputWidth)
        let plane = outputPlane
        let rowLength = samples.count * plane
        let shifted = isShiftedCopy
        for c in channelRange {
            for n in samples {
                let target = inputGradient + (n * channels + c) * h * w
                target.initialize(repeating: 0, count: h * w)
                for ki in 0..<k {
                    let rows = validRange(offset: ki, inputExtent: h, outputExtent: oh)
                    for kj in 0..<k {
                        let run = columns + ((c * k + ki) * k + kj) * rowLength + (n - samples.lowerBound) * plane
                        if shifted {
                            let (d, dx, lo, hi) = shift(ki: ki, kj: kj)
                            zeroBorderColumns(run, rows: rows, columnShift: dx)
                            let dst = target + d
                            for j in lo..<hi { dst[j] += run[j] }
                            continue
                        }
                        let cols = validRange(offset: kj, inputExtent: w, outputExtent: ow)
                        let firstX = cols.lowerBound * s - p + kj
                        let valid = cols.count
                        for oy in rows {
                            let src = run + oy * ow + cols.lowerBound
                            let dst = target + (oy * s - p + ki) * w + firstX
                            if s == 1 {
                                for i in 0..<valid { dst[i] += src[i] }
                            } else {
                                for i in 0..<valid { dst[i * s] += src[i] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `Y'[F, N·P]` → `out[N, F, P]` plus the bias, for `samples`.
    func scatterToNCHW(
        _ product: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>,
        batch: Int, samples: Range<Int>
    ) {
        let plane = outputPlane
        let rowLength = batch * plane
        for n in samples {
            for f in 0..<filters {
                let src = product + f * rowLength + n * plane
                let dst = output + (n * filters + f) * plane
                let b = bias[f]
                for i in 0..<plane { dst[i] = src[i] + b }
            }
        }
    }

    /// `dY[N, F, P]` → `dY'[F, N·P]` for the filters in `rows`, and `db[f]` = the sum of row
    /// `f` of `dY'`.
    func gatherFromNCHW(
        _ gradient: UnsafePointer<Float>, into regrouped: UnsafeMutablePointer<Float>,
        biasGradient: UnsafeMutablePointer<Float>, batch: Int, filters rows: Range<Int>
    ) {
        let plane = outputPlane
        let rowLength = batch * plane
        for f in rows {
            let row = regrouped + f * rowLength
            for n in 0..<batch {
                (row + n * plane).update(from: gradient + (n * filters + f) * plane, count: plane)
            }
            biasGradient[f] = laneSum(row, count: rowLength)
        }
    }
}

/// The sum of `count` floats in eight interleaved lanes: vectorisable (a single running sum
/// is a serial dependency chain) and deterministic (the order depends on `count` alone).
@inline(__always)
func laneSum(_ values: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>()
    let raw = UnsafeRawPointer(values)
    let body = count & ~7
    var i = 0
    while i < body {
        lanes += raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride, as: SIMD8<Float>.self)
        i += 8
    }
    var total = lanes.sum()
    while i < count {
        total += values[i]
        i += 1
    }
    return total
}

/// Splits data-parallel kernels (im2col, col2im, pooling, layout copies) over the cores.
///
/// Work is cut into contiguous chunks of items, at most one per core, and run with
/// `TesseraSupport`'s `ParallelLoop`. Callers only use it for loops where every output element
/// is produced inside one item, so the result is the same for any split and any scheduling.
/// Small jobs run inline, where waking a second thread would cost more than it saves.
enum ParallelKernel {
    static let workerCount = ParallelLoop.processorCount

    /// Below this many touched floats, a job runs on the calling thread.
    static let minimumParallelWork = 32_768

    static func forEachChunk(of count: Int, workPerItem: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = min(workerCount, count)
        if workers == 1 || count * workPerItem < minimumParallelWork {
            body(0..<count)
            return
        }
        // The loop wants a `@Sendable` closure, and the kernels capture raw pointers, which are
        // not `Sendable`. Sharing them is sound here: every chunk writes a disjoint part of the
        // output and the loop returns only when all chunks are done.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendableBox(body)
            ParallelLoop.forEach(count: workers, workers: workers) { (chunk, _) in
                shared.value(count * chunk / workers..<count * (chunk + 1) / workers)
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure when the caller guarantees the accesses are
/// disjoint (see `ParallelKernel.forEachChunk`).
private struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
