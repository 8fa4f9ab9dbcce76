/// Inverted dropout: in training, each element is zeroed with probability `rate` and the
/// kept ones are scaled by `1 / (1 − rate)`, so the expected activation is unchanged and
/// inference needs no rescaling — it is the identity.
///
/// **Reproducibility.** The masks come from the layer's own `TesseraRandom` stream, seeded
/// at `init` (or `reseed`), never from a global generator: the same seed gives the same
/// sequence of masks run after run, whatever other layers or threads draw. Each training
/// forward advances the stream; inference forwards do not touch it.
///
/// **Mask bits.** One 64-bit draw yields two 32-bit uniforms (low half first), one per
/// element; an element is kept when its uniform is at least `round(rate · 2³²)`. Integer
/// comparisons make the masks bit-identical on every machine.
///
/// The mask of the last training forward is kept, stored as the factor each element was
/// multiplied by (0 or `1 / (1 − rate)`), so backward is one multiplication per element.
public final class Dropout: Layer {
    public let kind = "dropout"
    public let rate: Float
    private var random: TesseraRandom
    /// `0` or `1 / (1 − rate)` per element of the last training forward.
    private var mask: [Float] = []
    /// Whether the last forward applied a mask (training) or was the identity (inference).
    private var lastForwardMasked = false

    public init(rate: Float, seed: UInt64) {
        precondition(rate >= 0 && rate < 1, "a dropout rate must be in [0, 1), got \(rate)")
        self.rate = rate
        self.random = TesseraRandom(seed: seed)
    }

    /// Restarts the mask stream, as if the layer had been created with `seed`.
    public func reseed(_ seed: UInt64) {
        random = TesseraRandom(seed: seed)
    }

    public func build(inputShape: [Int]) throws -> [Int] {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw TensorError(.shapeMismatch, "Dropout expects a non-empty per-sample shape, got \(inputShape)")
        }
        return inputShape
    }

    public func forward(
        _ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool
    ) {
        guard training, rate > 0 else {
            lastForwardMasked = false
            copyElements(from: input, into: &output, shape: input.shape)
            return
        }
        let count = input.count
        growIfNeeded(&mask, to: count)
        output.resize(to: input.shape)
        let threshold = UInt64(min((Double(rate) * 4_294_967_296).rounded(), 4_294_967_295))
        let scale = 1 / (1 - rate)
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                mask.withUnsafeMutableBufferPointer { m in
                    var rng = random
                    var i = 0
                    while i < count {
                        let word = rng.next()
                        m[i] = word & 0xFFFF_FFFF >= threshold ? scale : 0
                        y[i] = x[i] * m[i]
                        if i + 1 < count {
                            m[i + 1] = word >> 32 >= threshold ? scale : 0
                            y[i + 1] = x[i + 1] * m[i + 1]
                        }
                        i += 2
                    }
                    random = rng
                }
            }
        }
        lastForwardMasked = true
    }

    public func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor,
        parameters: UnsafeBufferPointer<Float>, parameterGradients: UnsafeMutableBufferPointer<Float>,
        inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        guard computeInputGradient else { return }
        guard lastForwardMasked else {
            copyElements(from: outputGradient, into: &inputGradient, shape: input.shape)
            return
        }
        inputGradient.resize(to: input.shape)
        outputGradient.withUnsafeBufferPointer { dy in
            mask.withUnsafeBufferPointer { m in
                inputGradient.withUnsafeMutableBufferPointer { dx in
                    for i in 0..<dy.count { dx[i] = dy[i] * m[i] }
                }
            }
        }
    }
}
