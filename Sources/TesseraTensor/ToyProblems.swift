import Foundation

/// Small, fully synthetic problems for demos, smoke tests and convergence checks.
public enum ToyProblems {
    /// The classic two-spirals task: two interleaved spirals in the plane, one per class.
    /// Linear models cannot separate them, so reaching high accuracy shows that a network
    /// with hidden layers is actually learning.
    ///
    /// Returns features `[2·pointsPerClass, 2]` and labels `[2·pointsPerClass]` (0 or 1),
    /// interleaved by class.
    public static func twoSpirals(
        pointsPerClass: Int, turns: Float = 1.5, noise: Float = 0.05, seed: UInt64
    ) -> (features: Tensor, labels: Tensor) {
        var rng = TesseraRandom(seed: seed)
        var features: [Float] = []
        var labels: [Float] = []
        features.reserveCapacity(4 * pointsPerClass)
        for i in 0..<pointsPerClass {
            let t = Float(i) / Float(pointsPerClass) * turns * 2 * .pi
            let radius = 0.1 + t / (turns * 2 * .pi)
            for cls in 0..<2 {
                let angle = t + Float(cls) * .pi
                features.append(radius * cos(angle) + noise * rng.nextNormal())
                features.append(radius * sin(angle) + noise * rng.nextNormal())
                labels.append(Float(cls))
            }
        }
        return (Tensor(shape: [2 * pointsPerClass, 2], scalars: features), Tensor(labels))
    }
}

/// A local training demo (`tessera demo`): an MLP
/// learns the two-spirals task with Adam, on one machine, in a couple of seconds.
public enum SpiralsDemo {
    public struct Epoch: Sendable {
        public var epoch: Int
        public var loss: Float
        public var trainAccuracy: Float
    }

    public struct Result: Sendable {
        public var epochs: [Epoch]
        public var testAccuracy: Float
        public var parameterCount: Int
        public var seconds: Double
    }

    /// Trains `2 → hidden… → 2` on two spirals and evaluates on a fresh held-out draw.
    public static func run(
        epochs: Int = 200, batchSize: Int = 64, hidden: [Int] = [64, 64], learningRate: Float = 0.01,
        seed: UInt64 = 7, progress: (Epoch) -> Void = { _ in }
    ) throws -> Result {
        let start = Date()
        let train = ToyProblems.twoSpirals(pointsPerClass: 500, seed: seed)
        let test = ToyProblems.twoSpirals(pointsPerClass: 250, seed: seed &+ 1)
        let model = try ModelPreset.mlp(inputs: 2, hidden: hidden, classes: 2, seed: seed)
        var optimizer = Adam(learningRate: learningRate)
        let n = train.labels.count
        var order = Array(0..<n)
        var rng = TesseraRandom(seed: seed).derived(0xDA7A)
        var batchX = Tensor.zeros([batchSize, 2])
        var batchY = Tensor.zeros([batchSize])
        var history: [Epoch] = []
        for epoch in 1...epochs {
            rng.shuffle(&order)
            var lossSum: Float = 0
            var batches = 0
            var start = 0
            while start < n {
                let size = min(batchSize, n - start)
                batchX.resize(to: [size, 2])
                batchY.resize(to: [size])
                train.features.withUnsafeBufferPointer { fx in
                    train.labels.withUnsafeBufferPointer { fy in
                        batchX.withUnsafeMutableBufferPointer { bx in
                            batchY.withUnsafeMutableBufferPointer { by in
                                for r in 0..<size {
                                    let source = order[start + r]
                                    bx[2 * r] = fx[2 * source]
                                    bx[2 * r + 1] = fx[2 * source + 1]
                                    by[r] = fy[source]
                                }
                            }
                        }
                    }
                }
                lossSum += try model.trainStep(
                    input: batchX, targets: batchY, loss: .softmaxCrossEntropy, optimizer: &optimizer)
                batches += 1
                start += size
            }
            if epoch == 1 || epoch % 20 == 0 || epoch == epochs {
                let record = Epoch(
                    epoch: epoch, loss: lossSum / Float(batches),
                    trainAccuracy: try accuracy(model, train.features, train.labels))
                history.append(record)
                progress(record)
            }
        }
        return Result(
            epochs: history, testAccuracy: try accuracy(model, test.features, test.labels),
            parameterCount: model.parameterCount, seconds: Date().timeIntervalSince(start))
    }

    /// Fraction of samples whose predicted class equals the label.
    public static func accuracy(_ model: Sequential, _ features: Tensor, _ labels: Tensor) throws -> Float {
        let predicted = try model.predictClasses(features)
        var correct = 0
        for (p, y) in zip(predicted, labels.scalars) where Float(p) == y { correct += 1 }
        return Float(correct) / Float(max(1, labels.count))
    }
}
