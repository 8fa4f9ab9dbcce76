import Testing

@testable import TesseraTensor

// MARK: - The checker

/// Finite-difference gradient checking for layers, losses and whole models.
///
/// The analytic gradient of a scalar function of Float inputs is compared with central
/// differences `(f(x + ε) − f(x − ε)) / 2ε`, evaluated in Double from Float forward passes.
/// Float32 rounding of `f` is about 1e-7 relative, which an ε of 1e-2 turns into ≈ 1e-5
/// relative noise in the numerical gradient, and the truncation error of central
/// differences is O(ε²); so a correct gradient agrees to ~1e-4, and anything above 1e-2 is a
/// real mistake (a missing factor, a wrong index, a forgotten term).
///
/// Each element's error is `|a − n| / max(|a|, |n|, floor)`, where `floor` is 1 % of the
/// largest gradient magnitude: tiny components cannot blow the ratio up by rounding alone.
enum GradientCheck {
    /// What a check found: the largest relative error of each gradient that was compared.
    struct Report: CustomStringConvertible {
        var input: Double = 0
        var parameters: Double = 0
        var worst: Double { max(input, parameters) }
        var description: String { "input error \(input), parameter error \(parameters)" }
    }

    static let tolerance = 1e-2

    /// Central differences of `f` with respect to the elements `indices` of `point` (all of
    /// them by default), in the order of `indices`.
    static func numericalGradient(
        at point: [Float], epsilon: Float, indices: [Int]? = nil, _ f: ([Float]) throws -> Double
    ) rethrows -> [Double] {
        var x = point
        var gradient: [Double] = []
        for i in indices ?? Array(point.indices) {
            let original = x[i]
            x[i] = original + epsilon
            let up = try f(x)
            x[i] = original - epsilon
            let down = try f(x)
            x[i] = original
            // Divide by the step actually taken, which Float rounding may have changed.
            gradient.append((up - down) / (Double(original + epsilon) - Double(original - epsilon)))
        }
        return gradient
    }

    /// All indices below `count`, or — for large inputs — the first and last and a fixed
    /// random sample of `limit` others: enough to cover every sample and border of a big
    /// input while keeping the check fast.
    static func indicesToCheck(count: Int, limit: Int, rng: inout TesseraRandom) -> [Int] {
        guard count > limit else { return Array(0..<count) }
        var chosen = Set([0, count - 1])
        while chosen.count < limit { chosen.insert(rng.nextInt(below: count)) }
        return chosen.sorted()
    }

    /// The largest relative error between an analytic and a numerical gradient.
    static func maxRelativeError(analytic: [Float], numerical: [Double]) -> Double {
        precondition(analytic.count == numerical.count, "gradients differ in length")
        guard !analytic.isEmpty else { return 0 }
        let scale = zip(analytic, numerical).map { max(abs(Double($0)), abs($1)) }.max() ?? 0
        let floor = max(1e-2 * scale, 1e-6)
        var worst = 0.0
        for (a, n) in zip(analytic, numerical) {
            let a = Double(a)
            worst = max(worst, abs(a - n) / max(abs(a), abs(n), floor))
        }
        return worst
    }

    /// `Σ rᵢ·yᵢ` in Double: a scalar whose gradient with respect to the output `y` is `r`.
    static func projection(_ output: Tensor, _ weights: [Float]) -> Double {
        output.withUnsafeBufferPointer { y in
            weights.withUnsafeBufferPointer { r in
                var total = 0.0
                for i in 0..<min(y.count, r.count) { total += Double(y[i]) * Double(r[i]) }
                return total
            }
        }
    }

    /// Checks one layer's input and parameter gradients.
    ///
    /// `make` is called for every evaluation, so a stochastic layer created with a fixed
    /// seed (dropout) applies the same mask each time. The layer runs in training mode; the
    /// scalar is a random projection of its output, so `∂/∂output` is a dense random tensor.
    /// Inputs of more than 400 elements are checked at 400 fixed random positions.
    static func check(
        layer make: () -> any Layer, inputShape: [Int], batch: Int, seed: UInt64,
        epsilon: Float = 1e-2, input makeInput: ((inout TesseraRandom, Int) -> [Float])? = nil
    ) throws -> Report {
        var rng = TesseraRandom(seed: seed)
        let probe = make()
        let outputShape = try probe.build(inputShape: inputShape)
        let parameterCount = probe.parameterSpecs.reduce(0) { $0 + $1.count }
        let inputCount = batch * inputShape.reduce(1, *)
        let x0 = makeInput?(&rng, inputCount) ?? (0..<inputCount).map { _ in rng.nextFloat(in: -1, 1) }
        let p0 = (0..<parameterCount).map { _ in rng.nextFloat(in: -0.5, 0.5) }
        let weights = (0..<(batch * outputShape.reduce(1, *))).map { _ in rng.nextFloat(in: -1, 1) }

        func evaluate(_ x: [Float], _ p: [Float]) throws -> Double {
            let layer = make()
            _ = try layer.build(inputShape: inputShape)
            var output = Tensor.zeros([0])
            p.withUnsafeBufferPointer { params in
                layer.forward(
                    Tensor(shape: [batch] + inputShape, scalars: x), parameters: params, output: &output,
                    training: true)
            }
            return projection(output, weights)
        }

        // Analytic gradients from one forward and one backward.
        let layer = make()
        _ = try layer.build(inputShape: inputShape)
        let input = Tensor(shape: [batch] + inputShape, scalars: x0)
        var output = Tensor.zeros([0])
        var inputGradient = Tensor.zeros([0])
        // Garbage in the gradient slice: backward must overwrite it, not add to it.
        var parameterGradient = [Float](repeating: 7, count: parameterCount)
        p0.withUnsafeBufferPointer { params in
            layer.forward(input, parameters: params, output: &output, training: true)
            parameterGradient.withUnsafeMutableBufferPointer { grads in
                layer.backward(
                    input: input, output: output, outputGradient: Tensor(shape: output.shape, scalars: weights),
                    parameters: params, parameterGradients: grads, inputGradient: &inputGradient,
                    computeInputGradient: true)
            }
        }

        var report = Report()
        let checked = indicesToCheck(count: inputCount, limit: 400, rng: &rng)
        let numericInput = try numericalGradient(at: x0, epsilon: epsilon, indices: checked) { try evaluate($0, p0) }
        report.input = maxRelativeError(analytic: checked.map { inputGradient.scalars[$0] }, numerical: numericInput)
        if parameterCount > 0 {
            let numericParameters = try numericalGradient(at: p0, epsilon: epsilon) { try evaluate(x0, $0) }
            report.parameters = maxRelativeError(analytic: parameterGradient, numerical: numericParameters)
        }
        return report
    }

    /// Checks a loss's gradient with respect to the model output.
    static func check(loss: Loss, output: Tensor, targets: Tensor, epsilon: Float = 1e-2) throws -> Double {
        var gradient = Tensor.zeros([0])
        _ = try loss.evaluate(output: output, targets: targets, gradient: &gradient)
        let numeric = try numericalGradient(at: output.scalars, epsilon: epsilon) {
            Double(try loss.value(output: Tensor(shape: output.shape, scalars: $0), targets: targets))
        }
        return maxRelativeError(analytic: gradient.scalars, numerical: numeric)
    }

    /// Checks a whole model's parameter gradients from `computeGradients` against the loss.
    static func check(
        model: Sequential, input: Tensor, targets: Tensor, loss: Loss, epsilon: Float = 1e-2
    ) throws
        -> Double
    {
        let start = model.parameters
        try model.computeGradients(input: input, targets: targets, loss: loss)
        let analytic = model.gradients
        let numeric = try numericalGradient(at: start, epsilon: epsilon) { p in
            model.parameters = p
            return Double(try loss.value(output: try model.forward(input, training: true), targets: targets))
        }
        model.parameters = start
        return maxRelativeError(analytic: analytic, numerical: numeric)
    }

    /// Inputs at least `margin` away from zero, so no finite-difference step crosses a kink.
    static func awayFromZero(margin: Float) -> (inout TesseraRandom, Int) -> [Float] {
        { rng, count in
            (0..<count).map { _ in
                let magnitude = rng.nextFloat(in: margin, 1)
                return rng.nextFloat() < 0.5 ? -magnitude : magnitude
            }
        }
    }

    /// Distinct values spaced 0.1 apart in random order: every pooling window has a unique
    /// maximum that an ε-step cannot overtake.
    static func distinctValues() -> (inout TesseraRandom, Int) -> [Float] {
        { rng, count in
            var values = (0..<count).map { Float($0) * 0.1 - Float(count) * 0.05 }
            rng.shuffle(&values)
            return values
        }
    }
}

// MARK: - Deliberately wrong layers (the checker must reject them)

/// `y = x²` with the derivative off by a factor of two.
private final class HalfDerivativeSquare: Layer {
    let kind = "broken"
    func build(inputShape: [Int]) throws -> [Int] { inputShape }
    func forward(_ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool) {
        output = Tensor(shape: input.shape, scalars: input.scalars.map { $0 * $0 })
    }
    func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor, parameters: UnsafeBufferPointer<Float>,
        parameterGradients: UnsafeMutableBufferPointer<Float>, inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        inputGradient = Tensor(shape: input.shape, scalars: zip(input.scalars, outputGradient.scalars).map { $0 * $1 })
    }
}

/// A correct `Dense` whose reported gradient of one weight is 5 % too large.
private final class SlightlyWrongDense: Layer {
    let kind = "broken"
    private let dense = Dense(outputs: 3)
    func build(inputShape: [Int]) throws -> [Int] { try dense.build(inputShape: inputShape) }
    var parameterSpecs: [ParameterSpec] { dense.parameterSpecs }
    func forward(_ input: Tensor, parameters: UnsafeBufferPointer<Float>, output: inout Tensor, training: Bool) {
        dense.forward(input, parameters: parameters, output: &output, training: training)
    }
    func backward(
        input: Tensor, output: Tensor, outputGradient: Tensor, parameters: UnsafeBufferPointer<Float>,
        parameterGradients: UnsafeMutableBufferPointer<Float>, inputGradient: inout Tensor, computeInputGradient: Bool
    ) {
        dense.backward(
            input: input, output: output, outputGradient: outputGradient, parameters: parameters,
            parameterGradients: parameterGradients, inputGradient: &inputGradient,
            computeInputGradient: computeInputGradient)
        parameterGradients[2] *= 1.05
    }
}

// MARK: - Tests

@Suite struct GradientCheckerSelfTests {
    @Test func rejectsAWrongInputGradient() throws {
        let report = try GradientCheck.check(layer: { HalfDerivativeSquare() }, inputShape: [4], batch: 2, seed: 1)
        #expect(report.input > 0.3, "the checker missed a derivative that is half what it should be: \(report)")
    }

    @Test func rejectsASlightlyWrongParameterGradient() throws {
        let report = try GradientCheck.check(layer: { SlightlyWrongDense() }, inputShape: [4], batch: 2, seed: 1)
        #expect(report.input < GradientCheck.tolerance, "\(report)")
        #expect(report.parameters > GradientCheck.tolerance, "the checker missed a 5 % error in one weight: \(report)")
    }

    @Test func numericalGradientOfAKnownFunction() {
        // f(x, y) = x³ + 2xy → (3x² + 2y, 2x)
        let g = GradientCheck.numericalGradient(at: [1.5, -2], epsilon: 1e-2) { v in
            let (x, y) = (Double(v[0]), Double(v[1]))
            return x * x * x + 2 * x * y
        }
        #expect(abs(g[0] - (3 * 2.25 - 4)) < 1e-3)
        #expect(abs(g[1] - 3) < 1e-4)
    }
}

@Suite struct LayerGradientTests {
    func expectCorrect(_ report: GradientCheck.Report, _ what: String) {
        #expect(report.input < GradientCheck.tolerance, "\(what): \(report)")
        #expect(report.parameters < GradientCheck.tolerance, "\(what): \(report)")
    }

    @Test func dense() throws {
        expectCorrect(
            try GradientCheck.check(layer: { Dense(outputs: 4) }, inputShape: [5], batch: 3, seed: 11), "Dense")
    }

    @Test func relu() throws {
        let report = try GradientCheck.check(
            layer: { ReLU() }, inputShape: [3, 4], batch: 2, seed: 12, input: GradientCheck.awayFromZero(margin: 0.1))
        expectCorrect(report, "ReLU")
    }

    @Test func tanh() throws {
        expectCorrect(try GradientCheck.check(layer: { Tanh() }, inputShape: [6], batch: 3, seed: 13), "Tanh")
    }

    @Test func sigmoid() throws {
        expectCorrect(try GradientCheck.check(layer: { Sigmoid() }, inputShape: [6], batch: 3, seed: 14), "Sigmoid")
    }

    @Test func flatten() throws {
        expectCorrect(
            try GradientCheck.check(layer: { Flatten() }, inputShape: [2, 3, 2], batch: 2, seed: 15), "Flatten")
    }

    @Test(arguments: [
        // (channels, height, width, filters, kernel, stride, padding, batch)
        (1, 5, 5, 2, 3, 1, 0, 2),
        (2, 6, 6, 3, 3, 2, 1, 2),
        (2, 5, 7, 3, 3, 2, 2, 3),
        (3, 4, 6, 2, 2, 1, 1, 2),
        (2, 7, 5, 2, 5, 3, 2, 2),
        (2, 4, 4, 2, 3, 1, 1, 10),  // more samples than one input-gradient group (8)
        (1, 23, 23, 2, 3, 1, 1, 9),  // planes ≥ 512: per-sample products, two groups
        (1, 25, 25, 2, 2, 1, 0, 2),  // per-sample products, not a shifted copy
    ])
    func conv2D(shape: (Int, Int, Int, Int, Int, Int, Int, Int)) throws {
        let (c, h, w, f, k, s, p, n) = shape
        let report = try GradientCheck.check(
            layer: { Conv2D(filters: f, kernelSize: k, stride: s, padding: p) }, inputShape: [c, h, w], batch: n,
            seed: UInt64(c * 1000 + k * 10 + s))
        expectCorrect(report, "Conv2D C\(c) \(h)×\(w) F\(f) k\(k) s\(s) p\(p) N\(n)")
    }

    @Test(arguments: [(2, nil), (3, 2), (2, 1)] as [(Int, Int?)])
    func maxPool2D(window: (Int, Int?)) throws {
        let report = try GradientCheck.check(
            layer: { MaxPool2D(size: window.0, stride: window.1) }, inputShape: [2, 5, 6], batch: 2, seed: 16,
            input: GradientCheck.distinctValues())
        expectCorrect(report, "MaxPool2D size \(window.0) stride \(String(describing: window.1))")
    }

    @Test func dropoutWithAFixedMask() throws {
        // A fresh layer with the same seed applies the same mask at every evaluation.
        let report = try GradientCheck.check(
            layer: { Dropout(rate: 0.4, seed: 99) }, inputShape: [4, 5], batch: 2, seed: 17)
        expectCorrect(report, "Dropout")
        // And the mask really zeroes something, so the check covered the scaling and the zeros.
        let dropout = Dropout(rate: 0.4, seed: 99)
        _ = try dropout.build(inputShape: [4, 5])
        var output = Tensor.zeros([0])
        dropout.forward(
            Tensor.ones([2, 4, 5]), parameters: UnsafeBufferPointer(start: nil, count: 0), output: &output,
            training: true)
        #expect(output.scalars.contains(0) && output.scalars.contains(1 / 0.6))
    }
}

@Suite struct LossGradientTests {
    @Test func softmaxCrossEntropy() throws {
        var rng = TesseraRandom(seed: 21)
        let logits = Tensor.randomNormal([4, 5], using: &rng)
        let labels = Tensor([0, 3, 4, 1])
        let error = try GradientCheck.check(loss: .softmaxCrossEntropy, output: logits, targets: labels)
        #expect(error < GradientCheck.tolerance, "softmax cross-entropy error \(error)")
    }

    @Test func binaryCrossEntropyWithLogits() throws {
        var rng = TesseraRandom(seed: 22)
        let logits = Tensor.randomNormal([6, 1], standardDeviation: 2, using: &rng)
        // Hard and soft labels.
        let targets = Tensor(shape: [6, 1], scalars: [0, 1, 1, 0, 0.3, 0.8])
        let error = try GradientCheck.check(loss: .binaryCrossEntropyWithLogits, output: logits, targets: targets)
        #expect(error < GradientCheck.tolerance, "binary cross-entropy error \(error)")
    }

    @Test func meanSquaredError() throws {
        var rng = TesseraRandom(seed: 23)
        let output = Tensor.randomNormal([3, 4], using: &rng)
        let targets = Tensor.randomNormal([3, 4], using: &rng)
        let error = try GradientCheck.check(loss: .meanSquaredError, output: output, targets: targets)
        #expect(error < GradientCheck.tolerance, "mean squared error error \(error)")
    }
}

@Suite struct ModelGradientTests {
    @Test func convolutionalModelEndToEnd() throws {
        let model = try Sequential(
            inputShape: [2, 6, 6],
            layers: [
                Conv2D(filters: 3, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(size: 2), Flatten(),
                Dense(outputs: 4, initialization: .glorot),
            ],
            seed: 31)
        var rng = TesseraRandom(seed: 32)
        let input = Tensor.randomUniform([3, 2, 6, 6], lower: -1, upper: 1, using: &rng)
        let labels = Tensor([0, 2, 3])
        let error = try GradientCheck.check(
            model: model, input: input, targets: labels, loss: .softmaxCrossEntropy, epsilon: 1e-2)
        #expect(error < GradientCheck.tolerance, "end-to-end parameter gradient error \(error)")
    }
}
