/// A fully connected layer, `y = x·Wᵀ + b`.
///
/// The weight is stored `[outputs, inputs]`, as PyTorch's `nn.Linear` does, so exported
/// safetensors files load into PyTorch unchanged. The forward pass writes the bias into the
/// output and lets `sgemm` accumulate onto it (`beta = 1`), so the bias costs no extra pass.
public final class Dense: Layer {
    public let kind = "dense"
    public let outputs: Int
    public private(set) var inputs: Int = 0
    private let initializer: Initialization

    /// How the weight is initialised.
    public enum Initialization: Sendable {
        /// He normal — the right choice before a ReLU.
        case he
        /// Glorot uniform — before tanh, sigmoid, or a loss.
        case glorot
    }

    public init(outputs: Int, initialization: Initialization = .he) {
        precondition(outputs > 0, "a Dense layer needs at least one output")
        self.outputs = outputs
        self.initializer = initialization
    }

    public func build(inputShape: [Int]) throws -> [Int] {
        try requireShape(inputShape, rank: 1, layer: "Dense")
        inputs = inputShape[0]
        return [outputs]
    }

    public var parameterSpecs: [ParameterSpec] {
        let weightInit: ParameterInitializer =
            switch initializer {
            case .he: .heNormal(fanIn: inputs)
            case .glorot: .glorotUniform(fanIn: inputs, fanOut: outputs)
            }
        return [
            ParameterSpec(name: "weight", shape: [outputs, inputs], initializer: weightInit),
            ParameterSpec(name: "bias", shape: [outputs], initializer: .zeros),
        ]
    }

    public func forward(
        _ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool
    ) {
        let batch = input.shape[0]
        output.resize(to: [batch, outputs])
        let (inputs, outputs) = (self.inputs, self.outputs)
        let weight = parameters.baseAddress!
        let bias = weight + inputs * outputs
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                let out = y.baseAddress!
                for r in 0..<batch {
                    (out + r * outputs).update(from: bias, count: outputs)
                }
                BLAS.sgemm(
                    transposeA: false, transposeB: true, m: batch, n: outputs, k: inputs, alpha: 1,
                    a: x.baseAddress!, lda: inputs, b: weight, ldb: inputs, beta: 1, c: out, ldc: outputs)
            }
        }
    }

    public func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor,
        parameters: UnsafeBufferPointer<Float>, parameterGradients: UnsafeMutableBufferPointer<Float>,
        inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        let batch = input.shape[0]
        let (inputs, outputs) = (self.inputs, self.outputs)
        let gradWeight = parameterGradients.baseAddress!
        let gradBias = gradWeight + inputs * outputs
        input.withUnsafeBufferPointer { x in
            outputGradient.withUnsafeBufferPointer { dy in
                // dW = dyᵀ · x   ([outputs, batch] · [batch, inputs])
                BLAS.sgemm(
                    transposeA: true, transposeB: false, m: outputs, n: inputs, k: batch, alpha: 1,
                    a: dy.baseAddress!, lda: outputs, b: x.baseAddress!, ldb: inputs, beta: 0,
                    c: gradWeight, ldc: inputs)
                // db = column sums of dy
                gradBias.initialize(repeating: 0, count: outputs)
                for r in 0..<batch {
                    let row = dy.baseAddress! + r * outputs
                    for c in 0..<outputs { gradBias[c] += row[c] }
                }
            }
        }
        guard computeInputGradient else { return }
        inputGradient.resize(to: [batch, inputs])
        outputGradient.withUnsafeBufferPointer { dy in
            inputGradient.withUnsafeMutableBufferPointer { dx in
                // dx = dy · W   ([batch, outputs] · [outputs, inputs])
                BLAS.sgemm(
                    transposeA: false, transposeB: false, m: batch, n: inputs, k: outputs, alpha: 1,
                    a: dy.baseAddress!, lda: outputs, b: parameters.baseAddress!, ldb: inputs, beta: 0,
                    c: dx.baseAddress!, ldc: inputs)
            }
        }
    }
}
