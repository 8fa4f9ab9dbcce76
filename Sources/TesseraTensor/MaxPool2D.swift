/// 2-D max pooling over batch-first `[N, C, H, W]` images: each output is the largest value
/// of a `size × size` window, windows `stride` apart, without padding.
///
/// The output extent is `(H − size) / stride + 1` (floor division, PyTorch's default): a
/// last row or column that does not fill a whole window is dropped.
///
/// Forward remembers, for every output, where its maximum came from (the offset inside its
/// input plane) in a private buffer reused across batches, so backward is a scatter with no
/// comparisons. **Ties go to the first** element in row-major window order, the same rule
/// as PyTorch's CPU kernel; the gradient flows to that one element only. Comparisons are a
/// plain `>`, which compiles to branch-free max/select instructions instead of propagating NaN
/// as PyTorch does: a NaN wins only where it comes first in its window. When
/// windows overlap (`stride < size`), an input element that is the maximum of several windows
/// receives the sum of their gradients.
public final class MaxPool2D: Layer {
    public let kind = "maxpool2d"
    public let size: Int
    public let stride: Int

    private var channels = 0, height = 0, width = 0
    private var outputHeight = 0, outputWidth = 0
    /// For each output of the last forward, the offset of its maximum in its `(n, c)` plane.
    private var argmax: [Int32] = []

    /// `stride` defaults to `size`: non-overlapping windows.
    public init(size: Int, stride: Int? = nil) {
        precondition(size > 0, "a MaxPool2D window needs a positive size")
        precondition((stride ?? size) > 0, "a MaxPool2D stride must be positive")
        self.size = size
        self.stride = stride ?? size
    }

    public func build(inputShape: [Int]) throws -> [Int] {
        try requireShape(inputShape, rank: 3, layer: "MaxPool2D")
        guard inputShape[1] >= size, inputShape[2] >= size else {
            throw TensorError(
                .shapeMismatch,
                "MaxPool2D window \(size)×\(size) is larger than the input \(inputShape[1])×\(inputShape[2]) "
                    + "(input [C, H, W] = \(inputShape))")
        }
        guard inputShape[1] * inputShape[2] <= Int(Int32.max) else {
            throw TensorError(.invalidArgument, "MaxPool2D input plane \(inputShape[1])×\(inputShape[2]) is too large")
        }
        (channels, height, width) = (inputShape[0], inputShape[1], inputShape[2])
        outputHeight = (height - size) / stride + 1
        outputWidth = (width - size) / stride + 1
        return [channels, outputHeight, outputWidth]
    }

    public func forward(
        _ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool
    ) {
        let batch = input.shape[0]
        let (h, w, oh, ow, k, s) = (height, width, outputHeight, outputWidth, size, stride)
        precondition(
            input.rank == 4 && input.shape[1] == channels && input.shape[2] == h && input.shape[3] == w,
            "MaxPool2D was built for [C, H, W] = [\(channels), \(h), \(w)], got input \(input.shape)")
        let planes = batch * channels
        output.resize(to: [batch, channels, oh, ow])
        if argmax.count < planes * oh * ow {
            argmax = [Int32](repeating: 0, count: planes * oh * ow)
        }
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                argmax.withUnsafeMutableBufferPointer { where_ in
                    let (x, y, where_) = (x.baseAddress!, y.baseAddress!, where_.baseAddress!)
                    ParallelKernel.forEachChunk(of: planes, workPerItem: h * w) { range in
                        for plane in range {
                            let source = x + plane * h * w
                            let target = y + plane * oh * ow
                            let index = where_ + plane * oh * ow
                            if k == 2 && s == 2 {
                                Self.poolTwoByTwo(
                                    source, width: w, into: target, index, outputHeight: oh, outputWidth: ow)
                                continue
                            }
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    let origin = oy * s * w + ox * s
                                    var best = source[origin]
                                    var at = origin
                                    for dy in 0..<k {
                                        let row = origin + dy * w
                                        for dx in 0..<k where source[row + dx] > best {
                                            best = source[row + dx]
                                            at = row + dx
                                        }
                                    }
                                    target[oy * ow + ox] = best
                                    index[oy * ow + ox] = Int32(truncatingIfNeeded: at)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The common 2×2, stride-2 window, unrolled: four loads and three comparisons per output,
    /// in the same first-wins order as the general loop.
    @inline(__always)
    private static func poolTwoByTwo(
        _ source: UnsafePointer<Float>, width w: Int, into target: UnsafeMutablePointer<Float>,
        _ index: UnsafeMutablePointer<Int32>, outputHeight oh: Int, outputWidth ow: Int
    ) {
        for oy in 0..<oh {
            let top = 2 * oy * w
            for ox in 0..<ow {
                let at0 = top + 2 * ox
                let at2 = at0 + w
                var best = source[at0]
                var at = at0
                if source[at0 + 1] > best { best = source[at0 + 1]; at = at0 + 1 }
                if source[at2] > best { best = source[at2]; at = at2 }
                if source[at2 + 1] > best { best = source[at2 + 1]; at = at2 + 1 }
                target[oy * ow + ox] = best
                index[oy * ow + ox] = Int32(truncatingIfNeeded: at)
            }
        }
    }

    public func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor,
        parameters: UnsafeBufferPointer<Float>, parameterGradients: UnsafeMutableBufferPointer<Float>,
        inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        guard computeInputGradient else { return }
        let batch = input.shape[0]
        let (h, w, outputs) = (height, width, outputHeight * outputWidth)
        let planes = batch * channels
        inputGradient.resize(to: input.shape)
        outputGradient.withUnsafeBufferPointer { dy in
            inputGradient.withUnsafeMutableBufferPointer { dx in
                argmax.withUnsafeBufferPointer { where_ in
                    let (dy, dx, where_) = (dy.baseAddress!, dx.baseAddress!, where_.baseAddress!)
                    ParallelKernel.forEachChunk(of: planes, workPerItem: h * w) { range in
                        for plane in range {
                            let target = dx + plane * h * w
                            target.initialize(repeating: 0, count: h * w)
                            let source = dy + plane * outputs
                            let index = where_ + plane * outputs
                            for o in 0..<outputs { target[Int(index[o])] += source[o] }
                        }
                    }
                }
            }
        }
    }
}
