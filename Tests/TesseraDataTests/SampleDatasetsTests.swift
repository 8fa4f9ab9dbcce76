import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

@Suite struct SampleDatasetsTests {
    /// `Datasets-sample/` in this checkout.
    static let committed = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Datasets-sample", isDirectory: true)

    /// The committed files are exactly what the generator makes: if the generator changes,
    /// this fails until `Scripts/generate-sample-datasets.sh` is run and the files committed.
    @Test func committedQuickstartFilesAreCurrent() throws {
        try withTemporaryDirectory { dir in
            let fresh = try SampleDatasets.writeQuickstartSites(to: dir, seed: SampleDatasets.quickstartSeed)
            #expect(
                fresh.map(\.lastPathComponent) == [
                    "site-1.csv", "site-2.csv", "site-3.csv", "site-4.csv", "site-5.csv",
                ])
            var total = 0
            for url in fresh {
                let committedURL = Self.committed.appendingPathComponent("clinical-risk").appendingPathComponent(
                    url.lastPathComponent)
                let committedBytes = try Data(contentsOf: committedURL)
                #expect(
                    committedBytes == (try Data(contentsOf: url)),
                    "\(committedURL.path) differs from the generator's output; run Scripts/generate-sample-datasets.sh")
                total += committedBytes.count
            }
            #expect(total < 2 << 20, "sample data must stay small: \(total) bytes")
        }
    }

    /// Writing and loading loses nothing: the CSV holds the generator's recorded values exactly.
    @Test func quickstartSitesRoundTripThroughCSV() throws {
        let generated = ClinicalRisk.generateSites(seed: SampleDatasets.quickstartSeed)
        let loaded = try SampleDatasets.loadQuickstartSites(from: Self.committed)
        #expect(loaded.count == generated.count)
        for (a, b) in zip(loaded, generated) {
            #expect(a.features == b.features)
            #expect(a.labels == b.labels)
            #expect(a.featureNames == b.featureNames)
            #expect(a.classCount == 2)
        }
    }

    @Test func writerFormatsFixedDecimalsWithoutLocale() throws {
        #expect(CSVWriter.format(27.3, decimals: 1) == "27.3")
        #expect(CSVWriter.format(-0.05, decimals: 2) == "-0.05")
        #expect(CSVWriter.format(1.005, decimals: 0) == "1")
        #expect(CSVWriter.format(12, decimals: 2) == "12.00")
        #expect(CSVWriter.format(0.1, decimals: nil) == "0.1")
        try withTemporaryDirectory { dir in
            let data = try Dataset(
                features: Tensor(shape: [2, 1], scalars: [1.5, -2]), labels: Tensor([1, 0]), featureNames: ["x, y"],
                classCount: 2, classNames: ["no", "yes \"maybe\""])
            let url = dir.appendingPathComponent("w.csv")
            try CSVWriter.write(data, to: url, labelName: "answer")
            #expect(
                try String(contentsOf: url, encoding: .utf8) == "\"x, y\",answer\n1.5,\"yes \"\"maybe\"\"\"\n-2.0,no\n")
            let back = try CSVLoader.load(url, options: CSVOptions(labelColumn: "answer"))
            #expect(back.features == data.features)
            #expect(back.classNames == ["no", "yes \"maybe\""])
            #expect(back.labels == data.labels)
        }
    }
}
