/// How a parameter is filled when a model is created.
public enum ParameterInitializer: Sendable, Hashable {
    case zeros
    /// `N(0, 2 / fanIn)` — for layers followed by ReLU.
    case heNormal(fanIn: Int)
    /// `U(±sqrt(6 / (fanIn + fanOut)))`.
    case glorotUniform(fanIn: Int, fanOut: Int)
    /// `U(±bound)`.
    case uniform(bound: Float)

    func fill(_ buffer: UnsafeMutableBufferPointer<Float>, using rng: inout TesseraRandom) {
        switch self {
        case .zeros:
            for i in buffer.indices { buffer[i] = 0 }
        case .heNormal(let fanIn):
            let std = (2 / Float(max(1, fanIn))).squareRoot()
            for i in buffer.indices { buffer[i] = std * rng.nextNormal() }
        case .glorotUniform(let fanIn, let fanOut):
            let bound = (6 / Float(max(1, fanIn + fanOut))).squareRoot()
            for i in buffer.indices { buffer[i] = rng.nextFloat(in: -bound, bound) }
        case .uniform(let bound):
            for i in buffer.indices { buffer[i] = rng.nextFloat(in: -bound, bound) }
        }
    }
}

/// One trainable tensor of a layer: its local name (`weight`, `bias`), shape and initialiser.
public struct ParameterSpec: Sendable, Hashable {
    public var name: String
    public var shape: [Int]
    public var initializer: ParameterInitializer

    public init(name: String, shape: [Int], initializer: ParameterInitializer) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
    }

    public var count: Int { shape.reduce(1, *) }
}

/// A differentiable building block of a `Sequential` model.
///
/// Layers do not own their parameters. The model keeps *all* parameters in one contiguous
/// `[Float]` (and all gradients in another), and hands each layer a pointer to its slice,
/// laid out as its `parameterSpecs` in order. That is what makes the flat parameter vector
/// of federated learning free: the model *is* a flat vector, and optimisers, clipping and
/// FedProx's proximal term are single passes over it.
///
/// Layers also do not own activations: the model owns one output and one gradient buffer
/// per layer and passes them `inout`, so steady-state training reuses the same memory every
/// batch. A layer may keep private scratch buffers (im2col columns, pooling indices, dropout
/// masks) between its `forward` and the matching `backward`.
///
/// Shapes passed to `build` exclude the batch dimension; tensors passed to `forward` and
/// `backward` include it as their first dimension.
public protocol Layer: AnyObject {
    /// Short lower-case kind used in parameter names, e.g. `dense`, `conv2d`.
    var kind: String { get }

    /// Fixes the layer's shapes for a per-sample `inputShape` and returns the per-sample
    /// output shape. Called once, before any other method.
    func build(inputShape: [Int]) throws -> [Int]

    /// The layer's parameters, valid after `build`; empty for parameter-free layers.
    var parameterSpecs: [ParameterSpec] { get }

    /// Computes `output` for a batch. `output` is resized by the layer as needed.
    func forward(
        _ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool)

    /// Given `outputGradient` (∂L/∂output), **overwrites** this layer's slice of
    /// `parameterGradients` with ∂L/∂parameters and, when `computeInputGradient` is true,
    /// writes ∂L/∂input into `inputGradient` (resized as needed).
    func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor,
        parameters: UnsafeBufferPointer<Float>, parameterGradients: UnsafeMutableBufferPointer<Float>,
        inputGradient: inout Tensor, computeInputGradient: Bool)
}

extension Layer {
    public var parameterSpecs: [ParameterSpec] { [] }
}

/// Checks a per-sample input shape against what a layer needs.
func requireShape(_ shape: [Int], rank: Int, layer: String) throws {
    guard shape.count == rank, shape.allSatisfy({ $0 > 0 }) else {
        throw TensorError(
            .shapeMismatch, "\(layer) expects a per-sample input of rank \(rank), got shape \(shape)")
    }
}
