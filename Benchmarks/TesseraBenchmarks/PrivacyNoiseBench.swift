import Foundation
import TesseraCrypto
import TesseraPrivacy
import TesseraTensor

/// The client-side cost of distributed DP in `make bench`: one site's encode of a 1M-parameter
/// clipped update (scale, randomised Hadamard rotation, conditional rounding, Skellam noise on
/// every word, reduction mod 2^32), drawing its randomness from the CSPRNG as a participant does,
/// against a numpy reference doing the same steps. Runs are interleaved with the reference's and
/// summarised by medians, so load on a shared machine hits both alike.
public enum PrivacyNoiseBenchmark {
    static let dimension = 1_000_000

    public static func run(reporter: BenchReporter, python: String, quick: Bool) throws {
        reporter.section("Distributed DP: client-side noise")
        let parameters = try DistributedSkellam.calibrate(
            dimension: dimension, clipNorm: 1, noiseMultiplier: 1, minimumSurvivors: 30, maximumCohort: 100,
            bitNoise: 5)
        reporter.note(
            String(
                format: "%d parameters (padded %d), γ = 2^%d, per-site μ = %.3g, C = 1, z = 1, t = 30, cohort ≤ 100",
                dimension, parameters.paddedDimension, Int(parameters.scale.exponent), parameters.perSiteMu))
        var data = TesseraRandom(seed: 18)
        var update = (0..<dimension).map { _ in Float.random(in: -1...1, using: &data) }
        Clipping.clip(&update, to: parameters.clipNorm)
        var secure = SecureRandomGenerator()
        func encodeOnce(_ round: Int) throws -> Double {
            try BenchClock.seconds {
                _ = try parameters.encode(
                    update, withinClip: true, rotationSeed: UInt64(round), randomWords: { secure.fill($0) })
            } * 1e3
        }
        _ = try encodeOnce(0)

        let rounds = quick ? 3 : 7
        var tessera: [Double] = []
        var numpy: [Double] = []
        var ratios: [Double] = []
        for round in 1...rounds {
            let milliseconds = try encodeOnce(round)
            tessera.append(milliseconds)
            if let reference = try measureNumpy(python: python, parameters: parameters, seed: round) {
                numpy.append(reference)
                ratios.append(reference / milliseconds)
            }
        }
        reporter.figure(
            "dp_noise_client_ms", BenchClock.median(tessera), unit: "ms",
            label: "Tessera encode of 1M parameters, median")
        guard !numpy.isEmpty else {
            reporter.note("numpy reference unavailable: run `make bench` (it installs numpy) or pass --python")
            return
        }
        reporter.figure(
            "dp_noise_client_numpy_ms", BenchClock.median(numpy), unit: "ms", label: "numpy reference (same steps)")
        reporter.figure(
            "dp_noise_client_vs_numpy", BenchClock.median(ratios), unit: "×",
            label: "numpy time / Tessera time, median of pairs")
    }

    /// Runs `Benchmarks/reference/dp_noise_numpy.py` once with the same parameters and reads its
    /// `encode_ms` line (one timed encode after a warm-up).
    static func measureNumpy(python: String, parameters: DistributedSkellam, seed: Int) throws -> Double? {
        try PythonReference.run(
            python: python, script: "dp_noise_numpy.py",
            arguments: [
                "--dimension", String(parameters.dimension), "--scale", String(parameters.scale),
                "--bound", String(parameters.squaredNormBound), "--mu", String(parameters.perSiteMu),
                "--bit-scale", String(parameters.bitScale), "--seed", String(seed),
            ])?["encode_ms"]
    }
}
