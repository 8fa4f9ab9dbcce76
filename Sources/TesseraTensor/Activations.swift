import Foundation

/// An element-wise activation whose derivative can be written in terms of its output, so
/// the backward pass needs no copy of the input.
public protocol ElementwiseActivation: Layer {
    /// `f(x)`.
    static func apply(_ x: Float) -> Float
    /// `f'(x)` expressed through `y = f(x)` (and `x` where that is simpler).
    static func derivative(input x: Float, output y: Float) -> Float
}

extension ElementwiseActivation {
    public func build(inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(
        _ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool
    ) {
        output.resize(to: input.shape)
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                for i in 0..<x.count { y[i] = Self.apply(x[i]) }
            }
        }
    }

    public func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor,
        parameters: UnsafeBufferPointer<Float>, parameterGradients: UnsafeMutableBufferPointer<Float>,
        inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        guard computeInputGradient else { return }
        inputGradient.resize(to: input.shape)
        input.withUnsafeBufferPointer { x in
            output.withUnsafeBufferPointer { y in
                outputGradient.withUnsafeBufferPointer { dy in
                    inputGradient.withUnsafeMutableBufferPointer { dx in
                        for i in 0..<x.count { dx[i] = dy[i] * Self.derivative(input: x[i], output: y[i]) }
                    }
                }
            }
        }
    }
}

/// `max(x, 0)`. The derivative at exactly 0 is taken as 0.
public final class ReLU: ElementwiseActivation {
    public let kind = "relu"
    public init() {}
    @inline(__always) public static func apply(_ x: Float) -> Float { x > 0 ? x : 0 }
    @inline(__always) public static func derivative(input x: Float, output y: Float) -> Float { x > 0 ? 1 : 0 }
}

/// The hyperbolic tangent.
public final class Tanh: ElementwiseActivation {
    public let kind = "tanh"
    public init() {}
    @inline(__always) public static func apply(_ x: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) public static func derivative(input x: Float, output y: Float) -> Float { 1 - y * y }
}

/// The logistic function `1 / (1 + e^-x)`, evaluated without overflow for large `|x|`.
public final class Sigmoid: ElementwiseActivation {
    public let kind = "sigmoid"
    public init() {}
    @inline(__always) public static func apply(_ x: Float) -> Float { stableSigmoid(x) }
    @inline(__always) public static func derivative(input x: Float, output y: Float) -> Float { y * (1 - y) }
}

/// `σ(x)` computed from `e^-|x|` so neither branch overflows.
@inline(__always)
func stableSigmoid(_ x: Float) -> Float {
    if x >= 0 {
        return 1 / (1 + Foundation.exp(-x))
    }
    let e = Foundation.exp(x)
    return e / (1 + e)
}

/// Collapses every per-sample dimension into one: `[N, C, H, W]` → `[N, C·H·W]`, in
/// row-major order (the same order PyTorch's `flatten(1)` uses).
public final class Flatten: Layer {
    public let kind = "flatten"
    private var width = 0
    public init() {}

    public func build(inputShape: [Int]) throws -> [Int] {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw TensorError(.shapeMismatch, "Flatten expects a non-empty per-sample shape, got \(inputShape)")
        }
        width = inputShape.reduce(1, *)
        return [width]
    }

    public func forward(
        _ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool
    ) {
        // Copy rather than share storage: a shared buffer would force the previous layer to
        // reallocate its output on the next batch (copy-on-write).
        copyElements(from: input, into: &output, shape: [input.shape[0], width])
    }

    public func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor,
        parameters: UnsafeBufferPointer<Float>, parameterGradients: UnsafeMutableBufferPointer<Float>,
        inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        guard computeInputGradient else { return }
        copyElements(from: outputGradient, into: &inputGradient, shape: input.shape)
    }
}

/// Copies the elements of `source` into `destination` (resized to `shape`, reusing its buffer).
func copyElements(from source: Tensor, into destination: inout Tensor, shape: [Int]) {
    destination.resize(to: shape)
    source.withUnsafeBufferPointer { src in
        destination.withUnsafeMutableBufferPointer { dst in
            dst.baseAddress!.update(from: src.baseAddress!, count: src.count)
        }
    }
}
