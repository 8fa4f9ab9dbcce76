public import Foundation
import TesseraTensor

/// Writes a tabular dataset as a CSV file that ``CSVLoader`` reads back exactly.
///
/// Why fixed decimals: sample files are committed to the repository, so the same data must
/// give the same bytes on every machine and toolchain. Numbers are therefore formatted from
/// integers (no locale, no `printf`), with the given decimal places per column, or with Swift's
/// shortest round-trip form when none are given.
public enum CSVWriter {
    /// Writes `dataset` (features `[N, F]`) with a header row, the features first and the
    /// label last. The file is replaced atomically.
    ///
    /// - Parameters:
    ///   - labelName: the header of the label column.
    ///   - decimals: decimal places per feature; `nil` writes the shortest exact form.
    /// - Throws: `DataError.shapeMismatch` for non-tabular features, `DataError.ioFailure` if
    ///   the file cannot be written.
    public static func write(_ dataset: Dataset, to url: URL, labelName: String, decimals: [Int]? = nil) throws {
        guard dataset.features.rank == 2 else {
            throw DataError(
                .shapeMismatch, "only tabular datasets ([N, F]) can be written as CSV, got \(dataset.features.shape)")
        }
        let width = dataset.featuresPerSample
        if let decimals, decimals.count != width {
            throw DataError(.shapeMismatch, "\(decimals.count) decimal settings for \(width) features")
        }
        let names = dataset.featureNames ?? (0..<width).map { "x\($0)" }
        var text = (names + [labelName]).map(quoted).joined(separator: ",") + "\n"
        text.reserveCapacity(dataset.count * width * 6)
        dataset.features.withUnsafeBufferPointer { x in
            dataset.labels.withUnsafeBufferPointer { y in
                for i in 0..<dataset.count {
                    for j in 0..<width {
                        text += format(x[i * width + j], decimals: decimals?[j])
                        text += ","
                    }
                    if dataset.isClassification {
                        let index = Int(y[i])
                        text += dataset.classNames.map { quoted($0[index]) } ?? String(index)
                    } else {
                        text += format(y[i], decimals: nil)
                    }
                    text += "\n"
                }
            }
        }
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw DataError(.ioFailure, "\(url.path): cannot write the file", file: url.path, cause: error)
        }
    }

    /// `value` with exactly `decimals` decimal places (rounded half away from zero), or the
    /// shortest text that parses back to the same `Float`.
    static func format(_ value: Float, decimals: Int?) -> String {
        guard let decimals, value.isFinite else { return "\(value)" }
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (Double(value) * Double(scale)).rounded()
        guard abs(scaled) < 9e15 else { return "\(value)" }
        let integer = Int64(scaled)
        let sign = integer < 0 ? "-" : ""
        let magnitude = integer.magnitude
        let whole = magnitude / UInt64(scale)
        if decimals == 0 { return sign + String(whole) }
        let fraction = String(magnitude % UInt64(scale))
        return sign + String(whole) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    private static func quoted(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// The sample data committed under `Datasets-sample/`, and how to regenerate it.
///
/// Why a library function: the files are the output of a generator, not hand-made data, so
/// the command that remakes them (`tessera datasets generate-samples --out Datasets-sample
/// --seed 2017`) and the test that checks the committed files are current both call this one
/// function.
public enum SampleDatasets {
    /// The seed the committed sample files were made with.
    public static let quickstartSeed: UInt64 = 2017

    /// Writes the quick start's five hospital sites, made by ``ClinicalRisk``, as
    /// `directory/clinical-risk/site-1.csv` … `site-5.csv` (label column `readmitted_30d`).
    ///
    /// - Returns: the files written, in site order.
    @discardableResult
    public static func writeQuickstartSites(to directory: URL, seed: UInt64 = quickstartSeed) throws -> [URL] {
        let folder = directory.appendingPathComponent("clinical-risk", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw DataError(.ioFailure, "\(folder.path): cannot create the directory", file: folder.path, cause: error)
        }
        let sites = ClinicalRisk.quickstartSites
        let datasets = ClinicalRisk.generateSites(sites, seed: seed)
        var written: [URL] = []
        for (site, dataset) in zip(sites, datasets) {
            let url = folder.appendingPathComponent("\(site.name).csv")
            try CSVWriter.write(dataset, to: url, labelName: ClinicalRisk.labelName, decimals: ClinicalRisk.decimals)
            written.append(url)
        }
        return written
    }

    /// Loads the quick-start site files written by ``writeQuickstartSites(to:seed:)``.
    public static func loadQuickstartSites(from directory: URL) throws -> [Dataset] {
        let folder = directory.appendingPathComponent("clinical-risk", isDirectory: true)
        return try ClinicalRisk.quickstartSites.map { site in
            try CSVLoader.load(
                folder.appendingPathComponent("\(site.name).csv"),
                options: CSVOptions(labelColumn: ClinicalRisk.labelName, classCount: 2))
        }
    }
}
