import Foundation

/// Updates a flat parameter vector from a flat gradient vector.
///
/// Optimisers see the whole model as one vector (see `Sequential`), so their state is one
/// vector per moment and every step is a single fused pass over memory.
public protocol Optimizer {
    mutating func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>)
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.
///
/// The update follows PyTorch's `torch.optim.SGD` (dampening 0), so hyper-parameters carry
/// over from papers and reference code:
/// `g ← ∇ + λw; v ← μv + g; step = nesterov ? g + μv : v; w ← w − η·step`.
public struct SGD: Optimizer, Sendable {
    public var learningRate: Float
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    private var velocity: [Float] = []

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(learningRate > 0, "learning rate must be positive")
        precondition(momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    /// Forgets the momentum buffer (for example at the start of a new federated round).
    public mutating func reset() { velocity = [] }

    public mutating func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count, "parameters and gradients differ in length")
        let n = parameters.count
        let (lr, mu, wd) = (learningRate, momentum, weightDecay)
        if mu == 0 {
            if wd == 0 {
                BLAS.saxpy(count: n, alpha: -lr, x: gradients.baseAddress!, y: parameters.baseAddress!)
            } else {
                for i in 0..<n { parameters[i] -= lr * (gradients[i] + wd * parameters[i]) }
            }
            return
        }
        if velocity.count != n { velocity = [Float](repeating: 0, count: n) }
        let nesterov = self.nesterov
        velocity.withUnsafeMutableBufferPointer { v in
            for i in 0..<n {
                let g = gradients[i] + wd * parameters[i]
                let vi = mu * v[i] + g
                v[i] = vi
                parameters[i] -= lr * (nesterov ? g + mu * vi : vi)
            }
        }
    }
}

/// Adam (Kingma & Ba, 2015) with bias correction and optional L2 weight decay, as in
/// PyTorch's `torch.optim.Adam`:
/// `m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w − η·m̂ / (√v̂ + ε)` with
/// `m̂ = m / (1−β₁ᵗ)`, `v̂ = v / (1−β₂ᵗ)`.
public struct Adam: Optimizer, Sendable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public private(set) var step = 0
    private var m: [Float] = []
    private var v: [Float] = []

    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0
    ) {
        precondition(learningRate > 0, "learning rate must be positive")
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "betas must be in [0, 1)")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public mutating func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count, "parameters and gradients differ in length")
        let n = parameters.count
        if m.count != n {
            m = [Float](repeating: 0, count: n)
            v = [Float](repeating: 0, count: n)
            step = 0
        }
        step += 1
        let (b1, b2, eps, wd) = (beta1, beta2, epsilon, weightDecay)
        let correction1 = 1 - Float(pow(Double(b1), Double(step)))
        let correction2 = 1 - Float(pow(Double(b2), Double(step)))
        let stepSize = learningRate / correction1
        let invSqrtCorrection2 = 1 / correction2.squareRoot()
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                for i in 0..<n {
                    let g = gradients[i] + wd * parameters[i]
                    let mi = b1 * m[i] + (1 - b1) * g
                    let vi = b2 * v[i] + (1 - b2) * g * g
                    m[i] = mi
                    v[i] = vi
                    parameters[i] -= stepSize * mi / (vi.squareRoot() * invSqrtCorrection2 + eps)
                }
            }
        }
    }
}

/// Scales `gradients` down so that their global L2 norm is at most `maxNorm`; returns the
/// norm before clipping. Gradients already within the bound are left untouched.
@discardableResult
public func clipByGlobalNorm(_ gradients: inout [Float], maxNorm: Float) -> Float {
    precondition(maxNorm > 0, "maxNorm must be positive")
    let n = gradients.count
    let norm = gradients.withUnsafeBufferPointer { BLAS.snrm2(count: n, x: $0.baseAddress!) }
    if norm > maxNorm {
        let factor = maxNorm / norm
        gradients.withUnsafeMutableBufferPointer { BLAS.sscal(count: n, alpha: factor, x: $0.baseAddress!) }
    }
    return norm
}
