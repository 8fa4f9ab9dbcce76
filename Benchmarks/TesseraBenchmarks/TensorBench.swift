import Foundation
import TesseraTensor

/// The tensor-engine benchmark of `make bench`: the machine's sgemm bound, MLP training
/// throughput against a numpy reference doing the same work in the same run, and the
/// McMahan CNN's throughput as a fraction of the sgemm bound.
public enum TensorBenchmark {
    /// MLP shapes of the benchmark (784-200-200-10, batch 64, plain SGD).
    static let mlpHidden = [200, 200]
    static let mlpBatch = 64
    static let cnnBatch = 32

    public static func run(reporter: BenchReporter, python: String, quick: Bool) throws {
        reporter.section("Tensor engine (OpenBLAS threads: \(TensorRuntime.threadCount))")
        let gflops = measureSgemm(size: quick ? 512 : 1024, repeats: quick ? 3 : 5)
        reporter.figure("sgemm_gflops", gflops, unit: "GFLOP/s", label: "sgemm \(quick ? 512 : 1024)³, best of runs")

        let mlpSteps = quick ? 100 : 400
        let mlp = try measureMLP(steps: mlpSteps)
        reporter.note("MLP 784-200-200-10, batch \(mlpBatch), SGD lr 0.01, \(mlpSteps) steps, random data")
        reporter.figure("mlp_samples_per_s", mlp, unit: "samples/s", label: "Tessera MLP training")
        if let numpy = try measureNumpyMLP(python: python, steps: mlpSteps) {
            reporter.figure("mlp_numpy_samples_per_s", numpy, unit: "samples/s", label: "numpy reference (same work)")
            reporter.figure("mlp_vs_numpy", mlp / numpy, unit: "×", label: "Tessera / numpy (target ≥ 1.3)")
        } else {
            reporter.note("numpy reference unavailable: run `make bench` (it installs numpy) or pass --python")
        }

        let cnnSteps = quick ? 5 : 20
        let (cnnRate, flopsPerSample) = try measureCNN(steps: cnnSteps)
        let bound = gflops * 1e9 / flopsPerSample
        reporter.note(
            String(
                format: "McMahan CNN, batch %d, SGD, %d steps; %.1f MFLOP/sample of GEMM work → bound %.0f samples/s",
                cnnBatch, cnnSteps, flopsPerSample / 1e6, bound))
        reporter.figure("cnn_samples_per_s", cnnRate, unit: "samples/s", label: "Tessera CNN training")
        reporter.figure(
            "cnn_fraction_of_sgemm_bound", cnnRate / bound, unit: "",
            label: "fraction of the sgemm bound (target ≥ 0.5)")
    }

    /// GFLOP/s of a square product through the same `matmul` the layers use.
    static func measureSgemm(size: Int, repeats: Int) -> Double {
        var rng = TesseraRandom(seed: 1)
        let a = Tensor.randomUniform([size, size], lower: -1, upper: 1, using: &rng)
        let b = Tensor.randomUniform([size, size], lower: -1, upper: 1, using: &rng)
        _ = Tensor.matmul(a, b)
        let seconds = BenchClock.best(repeats: repeats) { _ = Tensor.matmul(a, b) }
        return 2 * pow(Double(size), 3) / seconds / 1e9
    }

    static func measureMLP(steps: Int) throws -> Double {
        let model = try ModelPreset.mlp(inputs: 784, hidden: mlpHidden, classes: 10, seed: 1)
        var rng = TesseraRandom(seed: 2)
        let x = Tensor.randomUniform([mlpBatch, 784], using: &rng)
        let y = Tensor((0..<mlpBatch).map { Float($0 % 10) })
        var sgd = SGD(learningRate: 0.01)
        for _ in 0..<10 { try model.trainStep(input: x, targets: y, loss: .softmaxCrossEntropy, optimizer: &sgd) }
        let seconds = try BenchClock.best(repeats: 3) {
            for _ in 0..<steps {
                try model.trainStep(input: x, targets: y, loss: .softmaxCrossEntropy, optimizer: &sgd)
            }
        }
        return Double(steps * mlpBatch) / seconds
    }

    /// Runs `Benchmarks/reference/mlp_numpy.py` and reads its `samples_per_s` line.
    static func measureNumpyMLP(python: String, steps: Int) throws -> Double? {
        // The reference must use its own best BLAS kernel: these variables, when set on this
        // machine for older OpenBLAS builds, would slow numpy's newer one.
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "OPENBLAS_CORETYPE")
        environment.removeValue(forKey: "OPENBLAS_L2_SIZE")
        return try PythonReference.run(
            python: python, script: "mlp_numpy.py", arguments: ["--steps", String(steps), "--batch", String(mlpBatch)],
            environment: environment)?["samples_per_s"]
    }

    static func locateReference(_ name: String) -> URL? {
        let candidates = [
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                "Benchmarks/reference"),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("reference"),
        ]
        return candidates.map { $0.appendingPathComponent(name) }.first {
            FileManager.default.fileExists(atPath: $0.path)
        }
    }

    /// CNN training throughput and the GEMM FLOPs one training sample needs.
    static func measureCNN(steps: Int) throws -> (samplesPerSecond: Double, flopsPerSample: Double) {
        let model = try ModelPreset.mcmahanCNN(classes: 10, seed: 1)
        var rng = TesseraRandom(seed: 3)
        let x = Tensor.randomUniform([cnnBatch, 1, 28, 28], using: &rng)
        let y = Tensor((0..<cnnBatch).map { Float($0 % 10) })
        var sgd = SGD(learningRate: 0.01)
        for _ in 0..<2 { try model.trainStep(input: x, targets: y, loss: .softmaxCrossEntropy, optimizer: &sgd) }
        let seconds = try BenchClock.best(repeats: 3) {
            for _ in 0..<steps {
                try model.trainStep(input: x, targets: y, loss: .softmaxCrossEntropy, optimizer: &sgd)
            }
        }
        return (Double(steps * cnnBatch) / seconds, cnnGemmFlopsPerSample())
    }

    /// GEMM FLOPs (2·m·n·k) per training sample of the McMahan CNN with im2col: forward,
    /// weight gradient, and input gradient for every layer but the first.
    static func cnnGemmFlopsPerSample() -> Double {
        // (m, n, k) per sample for the forward product of each layer.
        let conv1 = (32.0, 28.0 * 28.0, 1.0 * 25.0)
        let conv2 = (64.0, 14.0 * 14.0, 32.0 * 25.0)
        let fc1 = (512.0, 1.0, 7.0 * 7.0 * 64.0)
        let fc2 = (10.0, 1.0, 512.0)
        func f(_ s: (Double, Double, Double)) -> Double { 2 * s.0 * s.1 * s.2 }
        return 2 * f(conv1) + 3 * f(conv2) + 3 * f(fc1) + 3 * f(fc2)
    }
}
