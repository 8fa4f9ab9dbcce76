import TesseraData
import TesseraTensor
import Testing

@testable import TesseraFederation

@Suite struct LocalTrainingTests {
    /// A linearly separable two-class problem in 4 dimensions.
    func dataset(_ n: Int, seed: UInt64) throws -> Dataset {
        var rng = TesseraRandom(seed: seed)
        let x = Tensor.randomNormal([n, 4], using: &rng)
        let y = (0..<n).map { i -> Float in
            let row = x.scalars[(4 * i)..<(4 * i + 4)]
            return row.reduce(0, +) > 0 ? 1 : 0
        }
        return try Dataset(features: x, labels: Tensor(y), classCount: 2)
    }

    func trainer() throws -> LocalTrainer {
        LocalTrainer(
            model: try ModelPreset.logisticRegression(inputs: 4, classes: 2, seed: 1), loss: .softmaxCrossEntropy)
    }

    @Test func deltaIsLocalMinusGlobalAndImprovesTheModel() throws {
        let data = try dataset(256, seed: 3)
        let t = try trainer()
        let global = t.model.parameters
        let before = try t.evaluate(parameters: global, on: data)
        let task = TrainingTask(epochs: 3, batchSize: 16, optimizer: .sgd(learningRate: 0.1), seed: 5)
        let outcome = try t.train(global: global, on: data, task: task)
        #expect(outcome.sampleCount == 256)
        #expect(outcome.steps == 3 * 16)
        #expect(outcome.delta.count == global.count)
        let local = zip(global, outcome.delta).map { $0 + $1 }
        let gap = zip(t.model.parameters, local).map { abs($0 - $1) }.max() ?? 1
        #expect(gap < 1e-6)
        let after = try t.evaluate(parameters: local, on: data)
        #expect(after.loss < before.loss)
        #expect((after.accuracy ?? 0) > 0.9)
        #expect(after.auc != nil)
    }

    @Test func sameTaskSameSeedGivesTheSameUpdate() throws {
        let data = try dataset(100, seed: 4)
        let t = try trainer()
        let global = t.model.parameters
        let task = TrainingTask(epochs: 2, batchSize: 8, optimizer: .adam(learningRate: 0.01), seed: 9)
        let a = try t.train(global: global, on: data, task: task)
        let b = try t.train(global: global, on: data, task: task)
        #expect(a.delta == b.delta)
        var other = task
        other.seed = 10
        #expect(try t.train(global: global, on: data, task: other).delta != a.delta)
    }

    @Test func proximalTermKeepsTheUpdateCloseToTheGlobalModel() throws {
        let data = try dataset(200, seed: 6)
        let t = try trainer()
        let global = t.model.parameters
        func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        var task = TrainingTask(epochs: 5, batchSize: 10, optimizer: .sgd(learningRate: 0.05), seed: 1)
        let free = norm(try t.train(global: global, on: data, task: task).delta)
        task.proximalMu = 5
        let prox = norm(try t.train(global: global, on: data, task: task).delta)
        #expect(prox < 0.5 * free, "FedProx update norm \(prox) vs FedAvg \(free)")
    }

    @Test func rejectsMismatchedModelsAndEmptyData() throws {
        let t = try trainer()
        let data = try dataset(10, seed: 1)
        #expect(throws: TrainingError.self) { try t.train(global: [0, 1], on: data, task: TrainingTask()) }
        #expect(throws: TrainingError.self) {
            try t.train(global: t.model.parameters, on: data, task: TrainingTask(epochs: 0))
        }
        #expect(throws: TrainingError.self) { try t.evaluate(parameters: [1], on: data) }
    }

    @Test func divergenceIsReportedNotSent() throws {
        let base = try dataset(64, seed: 2)
        let data = try Dataset(features: base.features * 1e30, labels: base.labels, classCount: 2)
        let t = try trainer()
        let task = TrainingTask(epochs: 2, batchSize: 4, optimizer: .sgd(learningRate: 1e30), seed: 1)
        #expect(throws: TrainingError.self) { try t.train(global: t.model.parameters, on: data, task: task) }
    }
}

@Suite struct EvaluationTests {
    @Test func aucKnownValues() {
        #expect(Evaluation.rocAUC(scores: [0.1, 0.2, 0.8, 0.9], positives: [false, false, true, true]) == 1)
        #expect(Evaluation.rocAUC(scores: [0.9, 0.8, 0.2, 0.1], positives: [false, false, true, true]) == 0)
        #expect(Evaluation.rocAUC(scores: [0.5, 0.5, 0.5, 0.5], positives: [false, true, false, true]) == 0.5)
        // One positive above one of two negatives: 1/2; with a tie against the other: 0.75.
        #expect(Evaluation.rocAUC(scores: [0.3, 0.5, 0.4], positives: [false, false, true]) == 0.5)
        #expect(Evaluation.rocAUC(scores: [0.3, 0.4, 0.4], positives: [false, false, true]) == 0.75)
        #expect(Evaluation.rocAUC(scores: [0.3, 0.4], positives: [true, true]) == nil)
    }

    @Test func weightedMeanOfSiteMetrics() {
        let merged = EvaluationMetrics.weightedMean([
            EvaluationMetrics(sampleCount: 100, loss: 1, accuracy: 0.5, auc: 0.6),
            EvaluationMetrics(sampleCount: 300, loss: 0.2, accuracy: 0.9, auc: nil),
        ])
        #expect(merged?.sampleCount == 400)
        #expect(abs((merged?.loss ?? 0) - 0.4) < 1e-12)
        #expect(abs((merged?.accuracy ?? 0) - 0.8) < 1e-12)
        #expect(merged?.auc == 0.6)
        #expect(EvaluationMetrics.weightedMean([]) == nil)
    }
}
