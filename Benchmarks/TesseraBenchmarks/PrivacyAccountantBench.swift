import Foundation
import TesseraPrivacy

/// The accountant benchmark of `make bench`: ε after 10,000 rounds of the Poisson-subsampled
/// Gaussian over the standard order grid, against a numpy reference doing the same computation
/// (`Benchmarks/reference/rdp_numpy.py`, the same formulas vectorised over orders). The two run
/// interleaved in the same session; each run's figure is a median of repeats, and the reported
/// figures are medians over runs. Both must give the same ε to 1e-6 relative.
public enum PrivacyAccountantBenchmark {
    static let samplingRate = 0.01
    static let noiseMultiplier = 1.1
    static let delta = 1e-5
    static let rounds = 10_000

    public static func run(reporter: BenchReporter, python: String, quick: Bool) throws {
        reporter.section("Differential privacy: the RDP accountant")
        reporter.note(
            "ε after \(rounds) rounds of the Poisson-subsampled Gaussian, q \(samplingRate), σ \(noiseMultiplier), "
                + "δ \(delta), over the \(RDPOrders.standard.count) orders of RDPOrders.standard")
        let runs = quick ? 3 : 7
        let repeats = quick ? 10 : 40
        let spent = account()

        var tesseraMs: [Double] = []
        var numpyMs: [Double] = []
        var ratios: [Double] = []
        var reference: (epsilon: Double, order: Double)?
        for _ in 0..<runs {
            let ms = measure(repeats: repeats)
            tesseraMs.append(ms)
            guard let numpy = try measureNumpy(python: python, repeats: repeats) else { continue }
            reference = (numpy.epsilon, numpy.order)
            numpyMs.append(numpy.ms)
            ratios.append(numpy.ms / ms)
        }

        reporter.note(String(format: "ε = %.6f at order %g", spent.epsilon, spent.order))
        reporter.figure(
            "dp_accountant_ms", BenchClock.median(tesseraMs), unit: "ms", label: "Tessera: ε for 10,000 rounds")
        guard let reference else {
            reporter.note("numpy reference unavailable: run `make bench` (it installs numpy) or pass --python")
            return
        }
        let disagreement = abs(reference.epsilon - spent.epsilon) / spent.epsilon
        guard disagreement <= 1e-6 else {
            throw BenchmarkError(
                "the accountant and the numpy reference disagree: ε \(spent.epsilon) at order \(spent.order) "
                    + "against \(reference.epsilon) at order \(reference.order) (relative \(disagreement))")
        }
        reporter.note(
            String(format: "numpy reference: ε = %.6f (relative difference %.1e)", reference.epsilon, disagreement))
        reporter.figure(
            "dp_accountant_numpy_ms", BenchClock.median(numpyMs), unit: "ms", label: "numpy reference (same work)")
        reporter.figure(
            "dp_accountant_vs_numpy", BenchClock.median(ratios), unit: "×",
            label: "speed-up: numpy time / Tessera time (median of runs)")
    }

    static func account() -> (epsilon: Double, order: Double) {
        PrivacyAccountant()
            .composing(.gaussian(noiseMultiplier: noiseMultiplier), samplingRate: samplingRate, steps: rounds)
            .spent(delta: delta)
    }

    /// Milliseconds of one fresh accountant's ε, the median of `repeats` timings.
    static func measure(repeats: Int) -> Double {
        var times: [Double] = []
        var sink = 0.0
        for _ in 0..<repeats {
            times.append(BenchClock.seconds { sink += account().epsilon } * 1000)
        }
        precondition(sink.isFinite, "the accountant returned a non-finite ε")
        return BenchClock.median(times)
    }

    /// Runs the numpy reference once (it times `repeats` computations itself and prints the median).
    static func measureNumpy(python: String, repeats: Int) throws -> (epsilon: Double, order: Double, ms: Double)? {
        let values = try PythonReference.run(
            python: python, script: "rdp_numpy.py",
            arguments: [
                "--sampling-rate", String(samplingRate), "--noise-multiplier", String(noiseMultiplier),
                "--rounds", String(rounds), "--delta", String(delta), "--repeats", String(repeats),
            ])
        guard let values, let epsilon = values["epsilon"], let order = values["order"], let ms = values["ms"] else {
            return nil
        }
        return (epsilon, order, ms)
    }
}
