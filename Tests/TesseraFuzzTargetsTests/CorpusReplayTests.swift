import Foundation
import TesseraFuzzTargets
import Testing

/// `Fuzz/`, beside `Tests/`.
let fuzzDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fuzz")

/// The files of `Fuzz/<folder>/<target>/`, sorted by name (none if the folder is absent).
func fuzzInputs(_ folder: String, _ target: FuzzTarget) -> [(name: String, bytes: [UInt8])] {
    let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
            return nil
        }
        return (name, [UInt8](data))
    }
}

/// Every `make test` replays each fuzz target's committed seed corpus and every crash the
/// fuzzer ever found (`Fuzz/Regressions/<target>/`), in process: a target traps on a bug, so
/// a regression fails the run.
@Suite struct CorpusReplayTests {
    /// The seeds must also get past the checks (a corpus the targets refuse outright, for
    /// example after a wire-format change, would leave the fuzzer testing the first checks only).
    @Test(arguments: FuzzTarget.allCases)
    func seedCorpusReplays(_ target: FuzzTarget) {
        let corpus = fuzzInputs("Corpus", target)
        #expect(corpus.count >= 3, "Fuzz/Corpus/\(target.rawValue) holds \(corpus.count) seeds; run Scripts/fuzz-seeds")
        let refused = corpus.filter { target.run($0.bytes) == 0 }.map(\.name)
        #expect(refused.count * 2 < corpus.count, "most seeds of \(target.rawValue) are refused: \(refused)")
    }

    @Test(arguments: FuzzTarget.allCases)
    func crashReproducersReplay(_ target: FuzzTarget) {
        for input in fuzzInputs("Regressions", target) { target.run(input.bytes) }
    }

    @Test func everyInputShapeIsAccepted() {
        // Empty, one byte, and bytes that frame nothing: a target must refuse them quietly.
        let inputs: [[UInt8]] = [[], [0], [0xFF], [0xFF, 0xFF, 0xFF], [UInt8](repeating: 0, count: 64)]
        for target in FuzzTarget.allCases {
            for input in inputs { target.run(input) }
        }
    }
}
