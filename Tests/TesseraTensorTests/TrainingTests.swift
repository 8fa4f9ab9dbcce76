import Testing

@testable import TesseraTensor

@Suite struct OptimizerSteps {
    /// Runs `steps` updates with fixed gradients and returns the parameters.
    func run<O: Optimizer>(_ optimizer: O, start: [Float], gradients: [[Float]]) -> [Float] {
        var optimizer = optimizer
        var p = start
        for g in gradients {
            g.withUnsafeBufferPointer { gp in
                p.withUnsafeMutableBufferPointer { pp in optimizer.update(parameters: pp, gradients: gp) }
            }
        }
        return p
    }

    func close(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test func plainSGD() {
        let p = run(SGD(learningRate: 0.1), start: [1, -2], gradients: [[0.5, -1], [0.5, -1]])
        // w − 0.1·0.5·2, w + 0.1·1·2
        #expect(close(p, [0.9, -1.8]))
    }

    @Test func sgdWithWeightDecay() {
        // g = 1 + 0.1·2 = 1.2 → 2 − 0.5·1.2 = 1.4
        let p = run(SGD(learningRate: 0.5, weightDecay: 0.1), start: [2], gradients: [[1]])
        #expect(close(p, [1.4]))
    }

    @Test func sgdMomentumByHand() {
        // v1 = 1, w1 = 1 − 0.1 = 0.9; v2 = 0.9·1 + 1 = 1.9, w2 = 0.9 − 0.19 = 0.71
        let p = run(SGD(learningRate: 0.1, momentum: 0.9), start: [1], gradients: [[1], [1]])
        #expect(close(p, [0.71]))
    }

    @Test func sgdNesterovByHand() {
        // step1: v=1, update g + μv = 1 + 0.9 = 1.9 → 1 − 0.19 = 0.81
        // step2: v=0.9+1=1.9, update 1 + 0.9·1.9 = 2.71 → 0.81 − 0.271 = 0.539
        let p = run(SGD(learningRate: 0.1, momentum: 0.9, nesterov: true), start: [1], gradients: [[1], [1]])
        #expect(close(p, [0.539]))
    }

    @Test func adamByHand() {
        // Step 1 of Adam moves every coordinate by lr·sign(g) (bias correction makes m̂/√v̂ = ±1).
        let p1 = run(Adam(learningRate: 0.01), start: [1, 1], gradients: [[3, -0.2]])
        #expect(close(p1, [0.99, 1.01], 1e-5))
        // Step 2 with g = 1 then g = 3 (β1 = 0.9, β2 = 0.999):
        // m = 0.1·1 → 0.09 + 0.3 = 0.39; v = 0.001 → 0.000999 + 0.009 = 0.009999
        // m̂ = 0.39 / 0.19 = 2.052631…; v̂ = 0.009999 / 0.001999 = 5.002001…
        // w = 0.99 − 0.01 · 2.052631 / (2.236515 + 1e-8) = 0.99 − 0.0091778 = 0.9808222
        let p2 = run(Adam(learningRate: 0.01), start: [1], gradients: [[1], [3]])
        #expect(close(p2, [0.9808222], 1e-5))
    }

    @Test func clippingByGlobalNorm() {
        var g: [Float] = [3, 4]
        let norm = clipByGlobalNorm(&g, maxNorm: 1)
        #expect(norm == 5)
        #expect(close(g, [0.6, 0.8]))
        var small: [Float] = [0.3, 0.4]
        clipByGlobalNorm(&small, maxNorm: 1)
        #expect(small == [0.3, 0.4])
    }
}

@Suite struct ModelTraining {
    @Test func flatParameterVectorRoundTrip() throws {
        let model = try ModelPreset.mlp(inputs: 5, hidden: [4], classes: 3, seed: 1)
        #expect(model.parameterCount == 5 * 4 + 4 + 4 * 3 + 3)
        #expect(model.parameterLayout.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
        var flat = model.parameters
        flat[0] = 42
        model.parameters = flat
        #expect(model.namedParameters()[0].tensor[0, 0] == 42)
        let copy = try ModelPreset.mlp(inputs: 5, hidden: [4], classes: 3, seed: 99)
        try copy.loadNamedParameters(
            Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) }))
        #expect(copy.parameters == model.parameters)
    }

    @Test func loadingRejectsMissingExtraOrMisshapenParameters() throws {
        let model = try ModelPreset.mlp(inputs: 3, hidden: [2], classes: 2, seed: 1)
        var named = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
        let before = model.parameters
        named["0.bias"] = nil
        #expect(throws: TensorError.self) { try model.loadNamedParameters(named) }
        named["0.bias"] = Tensor.zeros([3])
        #expect(throws: TensorError.self) { try model.loadNamedParameters(named) }
        named["0.bias"] = Tensor.zeros([2])
        named["9.weight"] = Tensor.zeros([1])
        #expect(throws: TensorError.self) { try model.loadNamedParameters(named) }
        #expect(model.parameters == before)
    }

    @Test func forwardRejectsWrongInputShape() throws {
        let model = try ModelPreset.mlp(inputs: 3, hidden: [2], classes: 2, seed: 1)
        #expect(throws: TensorError.self) { try model.forward(Tensor.zeros([4, 5])) }
    }

    @Test func sameSeedGivesBitIdenticalTraining() throws {
        func train() throws -> [Float] {
            let data = ToyProblems.twoSpirals(pointsPerClass: 64, seed: 3)
            let model = try ModelPreset.mlp(inputs: 2, hidden: [16, 16], classes: 2, seed: 21)
            var opt = SGD(learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4)
            for _ in 0..<30 {
                try model.trainStep(
                    input: data.features, targets: data.labels, loss: .softmaxCrossEntropy, optimizer: &opt,
                    clipNorm: 5)
            }
            return model.parameters
        }
        let a = try train()
        let b = try train()
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        let fresh = try ModelPreset.mlp(inputs: 2, hidden: [16, 16], classes: 2, seed: 21)
        #expect(a != fresh.parameters)
    }

    @Test func lossDecreasesWithEachOptimizerAndLoss() throws {
        var rng = TesseraRandom(seed: 4)
        let x = Tensor.randomNormal([32, 6], using: &rng)
        let targets = Tensor.randomNormal([32, 1], using: &rng)
        let binary = targets.map { $0 > 0 ? 1 : 0 }
        for loss in [Loss.meanSquaredError, .binaryCrossEntropyWithLogits] {
            let model = try ModelPreset.mlp(inputs: 6, hidden: [8], classes: 1, seed: 2)
            var adam = Adam(learningRate: 0.01)
            let y = loss == .meanSquaredError ? targets : binary
            let first = try model.trainStep(input: x, targets: y, loss: loss, optimizer: &adam)
            var last = first
            for _ in 0..<100 { last = try model.trainStep(input: x, targets: y, loss: loss, optimizer: &adam) }
            #expect(last < 0.7 * first, "\(loss): \(first) → \(last)")
        }
    }

    /// The demo task: an MLP must learn two spirals (not linearly separable) to ≥ 95%.
    @Test func mlpLearnsTwoSpirals() throws {
        let result = try SpiralsDemo.run(epochs: 150, seed: 7)
        #expect(result.testAccuracy >= 0.95, "held-out accuracy \(result.testAccuracy)")
        // A linear model cannot: the task really needs the hidden layers.
        let data = ToyProblems.twoSpirals(pointsPerClass: 500, seed: 7)
        let linear = try ModelPreset.logisticRegression(inputs: 2, classes: 2, seed: 7)
        var adam = Adam(learningRate: 0.05)
        for _ in 0..<200 {
            try linear.trainStep(
                input: data.features, targets: data.labels, loss: .softmaxCrossEntropy, optimizer: &adam)
        }
        let linearAccuracy = try SpiralsDemo.accuracy(linear, data.features, data.labels)
        #expect(linearAccuracy < 0.8)
    }

    @Test func softmaxCrossEntropyIsStableAndRejectsBadLabels() throws {
        let logits = Tensor(rows: [[1000, 0, -1000], [0, 0, 0]])
        var grad = Tensor.zeros([0])
        let value = try Loss.softmaxCrossEntropy.evaluate(output: logits, targets: Tensor([0, 2]), gradient: &grad)
        #expect(value.isFinite)
        #expect(abs(value - Float(0.5 * 1.0986123)) < 1e-4)
        let finite = grad.scalars.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(throws: TensorError.self) {
            try Loss.softmaxCrossEntropy.evaluate(output: logits, targets: Tensor([0, 3]), gradient: &grad)
        }
        #expect(throws: TensorError.self) {
            try Loss.softmaxCrossEntropy.evaluate(output: logits, targets: Tensor([0.5, 1]), gradient: &grad)
        }
        let bce = try Loss.binaryCrossEntropyWithLogits.value(output: Tensor([500, -500]), targets: Tensor([0, 1]))
        #expect(abs(bce - 500) < 1e-3)
    }
}
