import Testing

@testable import TesseraTensor

/// Runs `layer.forward` once on a freshly built layer.
private func runForward(
    _ layer: any Layer, inputShape: [Int], input: Tensor, parameters: [Float] = [], training: Bool = false
) throws -> Tensor {
    _ = try layer.build(inputShape: inputShape)
    var output = Tensor.zeros([0])
    parameters.withUnsafeBufferPointer { layer.forward(input, parameters: $0, output: &output, training: training) }
    return output
}

/// Direct convolution in Double, straight from the definition
/// `y[n,f,oy,ox] = b[f] + Σ x[n,c,oy·s−p+ki,ox·s−p+kj] · w[f,c,ki,kj]` (out-of-range pixels are 0).
private func naiveConvolution(
    input x: Tensor, weight w: [Float], bias b: [Float], filters: Int, kernel k: Int, stride s: Int, padding p: Int
) -> (shape: [Int], values: [Double]) {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let oh = (h + 2 * p - k) / s + 1
    let ow = (wd + 2 * p - k) / s + 1
    var y = [Double](repeating: 0, count: n * filters * oh * ow)
    for s0 in 0..<n {
        for f in 0..<filters {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var total = Double(b[f])
                    for ch in 0..<c {
                        for ki in 0..<k {
                            for kj in 0..<k {
                                let iy = oy * s - p + ki
                                let ix = ox * s - p + kj
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                total += Double(x[s0, ch, iy, ix]) * Double(w[((f * c + ch) * k + ki) * k + kj])
                            }
                        }
                    }
                    y[((s0 * filters + f) * oh + oy) * ow + ox] = total
                }
            }
        }
    }
    return ([n, filters, oh, ow], y)
}

@Suite struct Conv2DTests {
    @Test(arguments: [
        // (batch, channels, height, width, filters, kernel, stride, padding)
        (3, 2, 6, 6, 4, 3, 1, 0),
        (3, 2, 6, 6, 4, 3, 1, 1),
        (2, 3, 7, 9, 5, 3, 2, 1),
        (2, 2, 5, 7, 3, 3, 2, 2),
        (2, 1, 8, 8, 2, 5, 1, 2),
        (2, 2, 9, 6, 3, 2, 3, 1),
        (4, 3, 5, 5, 2, 1, 1, 0),
        (1, 2, 6, 5, 3, 3, 1, 1),  // batch 1 takes the direct-into-output path
        (5, 8, 16, 16, 6, 3, 1, 1),  // large enough to run im2col on several threads
        (10, 2, 5, 5, 3, 3, 1, 1),  // more samples than one input-gradient group
        (3, 2, 24, 24, 3, 3, 1, 1),  // planes ≥ 512: one product per sample
        (2, 1, 27, 26, 2, 3, 1, 0),  // per-sample, not a shifted copy
    ])
    func forwardMatchesDirectConvolution(config: (Int, Int, Int, Int, Int, Int, Int, Int)) throws {
        let (n, c, h, w, f, k, s, p) = config
        var rng = TesseraRandom(seed: UInt64(n * 100 + k * 10 + s))
        let input = Tensor.randomUniform([n, c, h, w], lower: -1, upper: 1, using: &rng)
        let weight = (0..<(f * c * k * k)).map { _ in rng.nextFloat(in: -1, 1) }
        let bias = (0..<f).map { _ in rng.nextFloat(in: -1, 1) }
        let layer = Conv2D(filters: f, kernelSize: k, stride: s, padding: p)
        let output = try runForward(layer, inputShape: [c, h, w], input: input, parameters: weight + bias)
        let expected = naiveConvolution(
            input: input, weight: weight, bias: bias, filters: f, kernel: k, stride: s, padding: p)
        #expect(output.shape == expected.shape)
        let worst = zip(output.scalars, expected.values).map { abs(Double($0) - $1) }.max() ?? .infinity
        #expect(worst < 1e-4, "Conv2D \(config) differs from the direct convolution by \(worst)")
    }

    @Test func reusedLayerHandlesChangingBatchSizes() throws {
        // Buffers grow for a larger batch and are reused for a smaller one; results stay exact.
        let layer = Conv2D(filters: 3, kernelSize: 3, stride: 1, padding: 1)
        _ = try layer.build(inputShape: [2, 5, 5])
        var rng = TesseraRandom(seed: 5)
        let parameters = (0..<(3 * 2 * 9 + 3)).map { _ in rng.nextFloat(in: -1, 1) }
        var output = Tensor.zeros([0])
        // A size repeated back to back reuses the already-zeroed padding of the columns.
        for n in [2, 2, 5, 1, 5, 5, 3] {
            let input = Tensor.randomUniform([n, 2, 5, 5], lower: -1, upper: 1, using: &rng)
            parameters.withUnsafeBufferPointer { layer.forward(input, parameters: $0, output: &output, training: true) }
            let expected = naiveConvolution(
                input: input, weight: Array(parameters[0..<54]), bias: Array(parameters[54...]), filters: 3, kernel: 3,
                stride: 1, padding: 1)
            #expect(output.shape == expected.shape)
            let worst = zip(output.scalars, expected.values).map { abs(Double($0) - $1) }.max() ?? .infinity
            #expect(worst < 1e-4, "batch \(n): error \(worst)")
        }
    }

    @Test func parameterLayoutIsPyTorchs() throws {
        let layer = Conv2D(filters: 6, kernelSize: 5)
        #expect(try layer.build(inputShape: [3, 32, 32]) == [6, 28, 28])
        #expect(layer.parameterSpecs.map(\.name) == ["weight", "bias"])
        #expect(layer.parameterSpecs.map(\.shape) == [[6, 3, 5, 5], [6]])
        #expect(layer.parameterSpecs[0].initializer == .heNormal(fanIn: 75))
        let glorot = Conv2D(filters: 6, kernelSize: 5, initialization: .glorot)
        _ = try glorot.build(inputShape: [3, 32, 32])
        #expect(glorot.parameterSpecs[0].initializer == .glorotUniform(fanIn: 75, fanOut: 150))
    }

    @Test func backwardCanBeRepeatedAndOverwritesItsGradients() throws {
        // The columns survive backward, so a second backward on the same forward gives the
        // same gradients; and the parameter-gradient slice is overwritten, never accumulated.
        // Both the batched path (small planes) and the per-sample path (planes ≥ 512) run.
        for (side, padding) in [(6, 1), (24, 1), (26, 0)] {
            let layer = Conv2D(filters: 2, kernelSize: 3, padding: padding)
            _ = try layer.build(inputShape: [2, side, side])
            var rng = TesseraRandom(seed: 8)
            let input = Tensor.randomUniform([3, 2, side, side], lower: -1, upper: 1, using: &rng)
            let parameters = (0..<38).map { _ in rng.nextFloat(in: -1, 1) }
            var output = Tensor.zeros([0])
            parameters.withUnsafeBufferPointer { layer.forward(input, parameters: $0, output: &output, training: true) }
            var results: [([Float], Tensor)] = []
            for _ in 0..<2 {
                var gradients = [Float](repeating: 5, count: 38)
                var inputGradient = Tensor.zeros([0])
                parameters.withUnsafeBufferPointer { p in
                    gradients.withUnsafeMutableBufferPointer { g in
                        layer.backward(
                            input: input, output: output, outputGradient: output, parameters: p, parameterGradients: g,
                            inputGradient: &inputGradient, computeInputGradient: true)
                    }
                }
                results.append((gradients, inputGradient))
            }
            #expect(results[0].0 == results[1].0, "plane \(side)")
            #expect(results[0].1 == results[1].1, "plane \(side)")
            #expect(results[0].1.shape == [3, 2, side, side])
            // db = Σ dY; with dY = Y that is a known, nonzero number.
            let biasGradient = Array(results[0].0[36...])
            let plane = output.shape[2] * output.shape[3]
            for f in 0..<2 {
                var expected: Float = 0
                for n in 0..<3 {
                    expected += output.scalars[((n * 2 + f) * plane)..<((n * 2 + f + 1) * plane)].reduce(0, +)
                }
                #expect(abs(biasGradient[f] - expected) <= 1e-3 * max(1, abs(expected)), "plane \(side)")
            }
        }
    }
}

@Suite struct MaxPool2DTests {
    @Test func knownValuesAndRouting() throws {
        let input = Tensor(
            shape: [1, 1, 4, 5],
            scalars: [
                1, 9, 2, 3, 100,
                4, 0, 8, 7, 100,
                5, 5, 6, -1, 100,
                5, 5, -2, -3, 100,
            ])
        let pool = MaxPool2D(size: 2)
        let output = try runForward(pool, inputShape: [1, 4, 5], input: input, training: true)
        // The fifth column does not fill a window and is dropped (floor division).
        #expect(output.shape == [1, 1, 2, 2])
        #expect(output.scalars == [9, 8, 5, 6])
        var inputGradient = Tensor.zeros([0])
        var none: [Float] = []
        none.withUnsafeMutableBufferPointer { g in
            pool.backward(
                input: input, output: output, outputGradient: Tensor(shape: [1, 1, 2, 2], scalars: [10, 20, 30, 40]),
                parameters: UnsafeBufferPointer(start: nil, count: 0), parameterGradients: g,
                inputGradient: &inputGradient, computeInputGradient: true)
        }
        // Ties (the four 5s) send the gradient to the first in row-major order only.
        #expect(
            inputGradient.scalars == [
                0, 10, 0, 0, 0,
                0, 0, 20, 0, 0,
                30, 0, 40, 0, 0,
                0, 0, 0, 0, 0,
            ])
    }

    @Test func overlappingWindowsAccumulateGradient() throws {
        // Stride 1: the centre 9 is the maximum of all four 2×2 windows.
        let input = Tensor(shape: [1, 1, 3, 3], scalars: [1, 2, 3, 4, 9, 5, 6, 7, 8])
        let pool = MaxPool2D(size: 2, stride: 1)
        let output = try runForward(pool, inputShape: [1, 3, 3], input: input, training: true)
        #expect(output.scalars == [9, 9, 9, 9])
        var inputGradient = Tensor.zeros([0])
        var none: [Float] = []
        none.withUnsafeMutableBufferPointer { g in
            pool.backward(
                input: input, output: output, outputGradient: Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4]),
                parameters: UnsafeBufferPointer(start: nil, count: 0), parameterGradients: g,
                inputGradient: &inputGradient, computeInputGradient: true)
        }
        #expect(inputGradient.scalars == [0, 0, 0, 0, 10, 0, 0, 0, 0])
    }

    @Test func poolsEveryChannelAndSampleSeparately() throws {
        // Plane (n, c) holds values offset by 100·(n·C + c); each output must come from its own plane.
        let (n, c) = (3, 4)
        var values: [Float] = []
        for plane in 0..<(n * c) { values += (0..<16).map { Float(plane * 100 + $0) } }
        let output = try runForward(
            MaxPool2D(size: 2), inputShape: [c, 4, 4], input: Tensor(shape: [n, c, 4, 4], scalars: values))
        #expect(output.shape == [n, c, 2, 2])
        let expected = (0..<(n * c)).flatMap { plane in [5, 7, 13, 15].map { Float(plane * 100 + $0) } }
        #expect(output.scalars == expected)
    }
}

@Suite struct DropoutTests {
    private func apply(_ dropout: Dropout, _ input: Tensor, training: Bool) -> Tensor {
        var output = Tensor.zeros([0])
        dropout.forward(
            input, parameters: UnsafeBufferPointer(start: nil, count: 0), output: &output, training: training)
        return output
    }

    @Test func inferenceIsTheIdentity() throws {
        let dropout = Dropout(rate: 0.5, seed: 1)
        _ = try dropout.build(inputShape: [10])
        var rng = TesseraRandom(seed: 2)
        let input = Tensor.randomNormal([4, 10], using: &rng)
        let output = apply(dropout, input, training: false)
        #expect(output == input)
        var inputGradient = Tensor.zeros([0])
        var none: [Float] = []
        none.withUnsafeMutableBufferPointer { g in
            dropout.backward(
                input: input, output: output, outputGradient: input,
                parameters: UnsafeBufferPointer(start: nil, count: 0),
                parameterGradients: g, inputGradient: &inputGradient, computeInputGradient: true)
        }
        #expect(inputGradient == input)
    }

    @Test(arguments: [0.1, 0.5, 0.8] as [Float])
    func trainingDropsTheRateAndRescalesTheRest(rate: Float) throws {
        let dropout = Dropout(rate: rate, seed: 3)
        _ = try dropout.build(inputShape: [1000])
        var rng = TesseraRandom(seed: 4)
        let input = Tensor.randomUniform([100, 1000], lower: 0.5, upper: 1.5, using: &rng)
        let output = apply(dropout, input, training: true)
        let dropped = output.scalars.filter { $0 == 0 }.count
        let fraction = Double(dropped) / Double(input.count)
        // 100 000 draws: the standard deviation of the fraction is below 0.0016.
        #expect(abs(fraction - Double(rate)) < 0.01, "dropped \(fraction), expected \(rate)")
        let scale = 1 / (1 - rate)
        let kept = zip(input.scalars, output.scalars).filter { $0.1 != 0 }
        #expect(!kept.isEmpty && kept.allSatisfy { $0.1 == $0.0 * scale })
        // The gradient goes through exactly the kept units, with the same scale.
        var inputGradient = Tensor.zeros([0])
        var none: [Float] = []
        let ones = Tensor.ones(input.shape)
        none.withUnsafeMutableBufferPointer { g in
            dropout.backward(
                input: input, output: output, outputGradient: ones,
                parameters: UnsafeBufferPointer(start: nil, count: 0),
                parameterGradients: g, inputGradient: &inputGradient, computeInputGradient: true)
        }
        #expect(zip(inputGradient.scalars, output.scalars).allSatisfy { ($0.1 == 0) == ($0.0 == 0) })
        #expect(inputGradient.scalars.allSatisfy { $0 == 0 || $0 == scale })
    }

    @Test func sameSeedSameMasksRunAfterRun() throws {
        let input = Tensor.ones([8, 33])  // an odd count exercises the last half-word
        func masks(seed: UInt64) throws -> [Tensor] {
            let dropout = Dropout(rate: 0.3, seed: seed)
            _ = try dropout.build(inputShape: [33])
            return (0..<3).map { _ in apply(dropout, input, training: true) }
        }
        let first = try masks(seed: 42)
        #expect(first == (try masks(seed: 42)))
        #expect(first[0] != first[1], "consecutive batches must get fresh masks")
        #expect(first != (try masks(seed: 43)))
        // reseed restarts the stream; inference forwards do not consume it.
        let dropout = Dropout(rate: 0.3, seed: 7)
        _ = try dropout.build(inputShape: [33])
        _ = apply(dropout, input, training: true)
        dropout.reseed(42)
        _ = apply(dropout, input, training: false)
        #expect(apply(dropout, input, training: true) == first[0])
    }
}

@Suite struct CNNPresetTests {
    @Test func mcmahanCNNHasThePapersParameterCountAndShapes() throws {
        let model = try ModelPreset.mcmahanCNN(classes: 10, seed: 1)
        #expect(model.parameterCount == 1_663_370)
        #expect(model.outputShape == [10])
        #expect(
            model.parameterLayout.map(\.name) == [
                "0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias",
            ])
        #expect(
            model.parameterLayout.map(\.shape) == [
                [32, 1, 5, 5], [32], [64, 32, 5, 5], [64], [512, 3136], [512], [10, 512], [10],
            ])
        var rng = TesseraRandom(seed: 2)
        let input = Tensor.randomUniform([3, 1, 28, 28], using: &rng)
        let output = try model.forward(input)
        #expect(output.shape == [3, 10])
        #expect(output.scalars.allSatisfy { $0.isFinite })
        #expect(try ModelPreset.mcmahanCNN(classes: 62, seed: 1).outputShape == [62])
    }

    @Test func batchedForwardEqualsPerSampleForward() throws {
        // The batched im2col, the threaded kernels and the batch-1 path must agree.
        let model = try ModelPreset.mcmahanCNN(seed: 3)
        var rng = TesseraRandom(seed: 4)
        let batch = Tensor.randomUniform([6, 1, 28, 28], using: &rng)
        let together = try model.forward(batch).scalars
        var separately: [Float] = []
        for n in 0..<6 {
            let one = Tensor(shape: [1, 1, 28, 28], scalars: Array(batch.scalars[(n * 784)..<((n + 1) * 784)]))
            separately += try model.forward(one).scalars
        }
        let worst = zip(together, separately).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
        #expect(worst < 1e-4, "batched and per-sample logits differ by \(worst)")
    }

    @Test func trainingIsDeterministicAndLearns() throws {
        var rng = TesseraRandom(seed: 5)
        let input = Tensor.randomUniform([8, 1, 28, 28], using: &rng)
        let labels = Tensor((0..<8).map { Float($0 % 10) })
        func train() throws -> (losses: [Float], parameters: [Float]) {
            let model = try ModelPreset.mcmahanCNN(seed: 6)
            var optimizer = SGD(learningRate: 0.05)
            var losses: [Float] = []
            for _ in 0..<5 {
                losses.append(
                    try model.trainStep(
                        input: input, targets: labels, loss: .softmaxCrossEntropy, optimizer: &optimizer))
            }
            return (losses, model.parameters)
        }
        let first = try train()
        let second = try train()
        #expect(first.losses == second.losses)
        #expect(first.parameters == second.parameters)
        #expect(
            first.losses.last! < first.losses.first!, "five steps on one batch should lower the loss: \(first.losses)")
    }
}

@Suite struct ShapeValidationTests {
    @Test func conv2DRejectsAKernelLargerThanThePaddedInput() throws {
        let error = #expect(throws: TensorError.self) {
            try Conv2D(filters: 4, kernelSize: 5, padding: 0).build(inputShape: [1, 3, 3])
        }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.message.contains("Conv2D") == true)
        // Padding can make it fit.
        #expect(try Conv2D(filters: 4, kernelSize: 5, padding: 1).build(inputShape: [1, 3, 3]) == [4, 1, 1])
    }

    @Test func conv2DRejectsTheWrongRank() {
        let error = #expect(throws: TensorError.self) {
            try Conv2D(filters: 4, kernelSize: 3).build(inputShape: [28, 28])
        }
        #expect(error?.message.contains("Conv2D") == true)
    }

    @Test func maxPoolRejectsAWindowLargerThanTheInput() {
        let error = #expect(throws: TensorError.self) { try MaxPool2D(size: 4).build(inputShape: [2, 3, 8]) }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.message.contains("MaxPool2D") == true)
    }

    @Test func aModelNamesTheLayerThatDoesNotFit() {
        let error = #expect(throws: TensorError.self) {
            try Sequential(
                inputShape: [1, 8, 8],
                layers: [Conv2D(filters: 2, kernelSize: 3), MaxPool2D(size: 2), Conv2D(filters: 2, kernelSize: 5)],
                seed: 1)
        }
        // 8 → conv 3 → 6 → pool → 3; a 5×5 kernel does not fit layer 2.
        #expect(error?.message.contains("layer 2 (conv2d)") == true, "\(String(describing: error))")
    }
}
