/// Where one named parameter lives in a model's flat parameter vector.
public struct ParameterEntry: Sendable, Hashable {
    /// PyTorch `nn.Sequential` style name: `"<layer index>.<local name>"`, e.g. `"0.weight"`.
    public var name: String
    public var shape: [Int]
    /// Offset of the first element in the flat vector.
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// A stack of layers trained as one model.
///
/// All parameters live in one contiguous `[Float]` (`parameters`) and all gradients in
/// another (`gradients`), in the order of `parameterLayout`. Federated learning moves models
/// as flat vectors, so reading or replacing the whole model is a single array copy with no
/// per-tensor bookkeeping, and every optimiser step is one pass over memory.
///
/// A model instance is not thread-safe: it owns reusable activation buffers. Give each
/// concurrent trainer its own model.
public final class Sequential {
    public let layers: [any Layer]
    /// Per-sample input shape (without the batch dimension).
    public let inputShape: [Int]
    /// Per-sample output shape.
    public let outputShape: [Int]
    /// Every named parameter, in flat-vector order.
    public let parameterLayout: [ParameterEntry]

    /// The model's parameters as one flat vector. Setting it requires the same length.
    public var parameters: [Float] {
        didSet {
            precondition(
                parameters.count == parameterCount,
                "parameter vector has \(parameters.count) elements, the model needs \(parameterCount)")
        }
    }
    /// Gradients of the last `backward`, in the same layout as `parameters`.
    public internal(set) var gradients: [Float]

    private let layerRanges: [Range<Int>]
    private var activations: [Tensor]
    private var activationGradients: [Tensor]
    private var lossGradient = Tensor.zeros([0])

    /// Builds every layer for `inputShape` and initialises the parameters from `seed`.
    /// Layer `i` draws from its own derived stream, so inserting a layer does not change the
    /// initial values of the others.
    public init(inputShape: [Int], layers: [any Layer], seed: UInt64) throws {
        guard !layers.isEmpty else {
            throw TensorError(.invalidArgument, "a Sequential model needs at least one layer")
        }
        self.layers = layers
        self.inputShape = inputShape
        var shape = inputShape
        var layout: [ParameterEntry] = []
        var ranges: [Range<Int>] = []
        var offset = 0
        for (index, layer) in layers.enumerated() {
            do {
                shape = try layer.build(inputShape: shape)
            } catch let error as TensorError {
                throw TensorError(error.code, "layer \(index) (\(layer.kind)): \(error.message)")
            }
            let start = offset
            for spec in layer.parameterSpecs {
                layout.append(ParameterEntry(name: "\(index).\(spec.name)", shape: spec.shape, offset: offset))
                offset += spec.count
            }
            ranges.append(start..<offset)
        }
        self.outputShape = shape
        self.parameterLayout = layout
        self.layerRanges = ranges
        self.parameters = [Float](repeating: 0, count: offset)
        self.gradients = [Float](repeating: 0, count: offset)
        self.activations = [Tensor](repeating: .zeros([0]), count: layers.count + 1)
        self.activationGradients = [Tensor](repeating: .zeros([0]), count: layers.count + 1)
        reinitialize(seed: seed)
    }

    /// Total number of scalar parameters.
    public var parameterCount: Int { layerRanges.last?.upperBound ?? 0 }

    /// Draws fresh initial parameters from `seed`.
    public func reinitialize(seed: UInt64) {
        let root = TesseraRandom(seed: seed)
        parameters.withUnsafeMutableBufferPointer { all in
            for (index, layer) in layers.enumerated() {
                var rng = root.derived(UInt64(index))
                var offset = layerRanges[index].lowerBound
                for spec in layer.parameterSpecs {
                    let slice = UnsafeMutableBufferPointer(rebasing: all[offset..<offset + spec.count])
                    spec.initializer.fill(slice, using: &rng)
                    offset += spec.count
                }
            }
        }
    }

    // MARK: Forward and backward

    /// Runs the model on a batch `[N] + inputShape`. In training mode the activations are
    /// kept for `backward`, and stochastic layers (dropout) are active.
    public func forward(_ input: Tensor, training: Bool = false) throws -> Tensor {
        guard input.rank == inputShape.count + 1, Array(input.shape.dropFirst()) == inputShape else {
            throw TensorError(
                .shapeMismatch,
                "model expects input of shape [batch] + \(inputShape), got \(input.shape)")
        }
        activations[0] = input
        parameters.withUnsafeBufferPointer { all in
            for (index, layer) in layers.enumerated() {
                let layerInput = activations[index]
                let params = UnsafeBufferPointer(rebasing: all[layerRanges[index]])
                layer.forward(layerInput, parameters: params, output: &activations[index + 1], training: training)
            }
        }
        return activations[layers.count]
    }

    /// The output of the last `forward` (empty before the first). Read it and let it go: a
    /// copy kept past the next `forward` forces that pass to reallocate its output buffer.
    public var lastOutput: Tensor? {
        let output = activations[layers.count]
        return output.count == 0 ? nil : output
    }

    /// Back-propagates `outputGradient` (∂L/∂output of the last `forward`) and overwrites
    /// `gradients`. The input gradient of the first layer is never computed: nobody needs it.
    public func backward(outputGradient: Tensor) {
        precondition(
            outputGradient.shape == activations[layers.count].shape,
            "output gradient \(outputGradient.shape) does not match the last output \(activations[layers.count].shape)")
        activationGradients[layers.count] = outputGradient
        backpropagate()
    }

    private func backpropagate() {
        parameters.withUnsafeBufferPointer { all in
            gradients.withUnsafeMutableBufferPointer { allGrads in
                for index in stride(from: layers.count - 1, through: 0, by: -1) {
                    let range = layerRanges[index]
                    let input = activations[index]
                    let output = activations[index + 1]
                    let outGrad = activationGradients[index + 1]
                    layers[index].backward(
                        input: input, output: output, outputGradient: outGrad,
                        parameters: UnsafeBufferPointer(rebasing: all[range]),
                        parameterGradients: UnsafeMutableBufferPointer(rebasing: allGrads[range]),
                        inputGradient: &activationGradients[index],
                        computeInputGradient: index > 0)
                }
            }
        }
    }

    /// Forward in training mode, the loss, and backward: fills `gradients` and returns the
    /// mean loss of the batch. Does not change the parameters.
    @discardableResult
    public func computeGradients(input: Tensor, targets: Tensor, loss: Loss) throws -> Float {
        _ = try forward(input, training: true)
        let output = activations[layers.count]
        let value = try loss.evaluate(output: output, targets: targets, gradient: &lossGradient)
        swap(&activationGradients[layers.count], &lossGradient)
        backpropagate()
        swap(&activationGradients[layers.count], &lossGradient)
        return value
    }

    /// One optimisation step on a batch: gradients, optional clipping by global norm, then the
    /// optimiser's update. Returns the batch's mean loss (before the update).
    @discardableResult
    public func trainStep<O: Optimizer>(
        input: Tensor, targets: Tensor, loss: Loss, optimizer: inout O, clipNorm: Float? = nil
    ) throws -> Float {
        let value = try computeGradients(input: input, targets: targets, loss: loss)
        if let clipNorm { clipByGlobalNorm(&gradients, maxNorm: clipNorm) }
        applyGradients(&optimizer)
        return value
    }

    /// Applies `gradients` with `optimizer`.
    public func applyGradients<O: Optimizer>(_ optimizer: inout O) {
        gradients.withUnsafeBufferPointer { g in
            parameters.withUnsafeMutableBufferPointer { p in
                optimizer.update(parameters: p, gradients: g)
            }
        }
    }

    /// Read-write access to the gradient vector between `computeGradients` and
    /// `applyGradients` (FedProx adds its proximal term here).
    @discardableResult
    public func withGradients<R>(_ body: (inout [Float]) throws -> R) rethrows -> R {
        try body(&gradients)
    }

    // MARK: Named parameters

    /// Every parameter as a named tensor, in flat order.
    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        parameterLayout.map { entry in
            (
                entry.name,
                Tensor(shape: entry.shape, scalars: Array(parameters[entry.offset..<entry.offset + entry.count]))
            )
        }
    }

    /// Replaces every parameter from named tensors. Every name of the model must be present
    /// with its exact shape, and no other name may appear; on error nothing is changed.
    public func loadNamedParameters(_ named: [String: Tensor]) throws {
        var flat = parameters
        for entry in parameterLayout {
            guard let tensor = named[entry.name] else {
                throw TensorError(.unknownParameter, "parameter '\(entry.name)' (shape \(entry.shape)) is missing")
            }
            guard tensor.shape == entry.shape else {
                throw TensorError(
                    .shapeMismatch,
                    "parameter '\(entry.name)' has shape \(tensor.shape), the model needs \(entry.shape)")
            }
            flat.replaceSubrange(entry.offset..<entry.offset + entry.count, with: tensor.scalars)
        }
        let expected = Set(parameterLayout.map(\.name))
        if let extra = named.keys.sorted().first(where: { !expected.contains($0) }) {
            throw TensorError(.unknownParameter, "parameter '\(extra)' does not exist in this model")
        }
        parameters = flat
    }

    /// Class predictions (argmax of the output) for a batch, in inference mode.
    public func predictClasses(_ input: Tensor) throws -> [Int] {
        let output = try forward(input, training: false)
        if output.shape.count == 2 && output.shape[1] == 1 {
            return output.scalars.map { $0 > 0 ? 1 : 0 }
        }
        return output.reshaped([output.shape[0], -1]).argmax()
    }
}
