import Foundation
import TesseraData
public import TesseraFederation
import TesseraTensor

/// The simulated participants' local data for an experiment, built from its `dataset:` and
/// `partitioning:` sections: loaded or generated, partitioned, split into train and test at
/// each site, and (optionally) standardised with each site's own training statistics.
///
/// Standardisation is per site on purpose: pooled statistics would need every site's data in
/// one place, which is exactly what federated learning avoids.
public struct ExperimentData: Sendable {
    public struct Site: Sendable {
        public var name: String
        public var data: LocalData
    }

    public var sites: [Site]
    public var inputs: Int
    public var classes: Int
    /// Per-sample feature shape (for example `[1, 28, 28]` for images).
    public var sampleShape: [Int]
    /// A readable description of the partition (sizes and label histograms).
    public var summary: String

    /// The dataset name participants offer (the experiment's name: one dataset per experiment).
    public static let datasetName = "data"

    public static func load(_ config: ExperimentConfig) throws -> ExperimentData {
        let dataset = config.dataset
        let seed = config.seed
        var pooled: Dataset?
        var natural: [(String, Dataset)] = []
        switch dataset.kind {
        case .csv, .clinicalRisk:
            let label = dataset.labelColumn ?? ClinicalRisk.labelName
            var columns: CSVOptions.ColumnSelection = .all
            if let only = dataset.featureColumns { columns = .only(only) }
            if !dataset.excludeColumns.isEmpty { columns = .excluding(dataset.excludeColumns) }
            let delimiter = dataset.delimiter.utf8.first ?? UInt8(ascii: ",")
            if dataset.paths.isEmpty {
                // clinical_risk with no files: generate the quick-start hospitals from the seed.
                let generated = ClinicalRisk.generateSites(
                    ClinicalRisk.siteProfiles(count: config.participants), seed: seed)
                natural = generated.enumerated().map { ("site-\($0.offset + 1)", $0.element) }
            } else {
                // Read the class names of every file first so that all sites number the classes
                // the same way, even when one site lacks a class.
                let files = dataset.paths.map { config.resolve($0) }
                var loaded: [(String, Dataset)] = []
                var classNames = Set<String>()
                for url in files {
                    let probe = try CSVLoader.load(
                        url, options: CSVOptions(labelColumn: label, columns: columns, delimiter: delimiter))
                    classNames.formUnion(probe.classNames ?? (0..<(probe.classCount ?? 0)).map(String.init))
                }
                let ordered = classNames.sorted { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) }
                for url in files {
                    let data = try CSVLoader.load(
                        url,
                        options: CSVOptions(
                            labelColumn: label, classNames: ordered, columns: columns, delimiter: delimiter))
                    loaded.append((url.deletingPathExtension().lastPathComponent, data))
                }
                natural = loaded
            }
        case .npy:
            pooled = try NPYLoader.loadDataset(
                features: config.resolve(dataset.features ?? ""), labels: config.resolve(dataset.labels ?? ""))
        case .idx:
            pooled = try IDXLoader.loadDataset(
                images: config.resolve(dataset.images ?? ""), labels: config.resolve(dataset.labels ?? ""))
        case .syntheticFedProx, .syntheticIID:
            var generator =
                dataset.kind == .syntheticIID
                ? FedProxSynthetic.Configuration.iid(devices: config.participants)
                : FedProxSynthetic.Configuration.synthetic(
                    alpha: dataset.alpha, beta: dataset.beta, devices: config.participants)
            generator.dimension = dataset.dimension
            generator.classes = dataset.classes
            generator.maximumSamples = dataset.maxSamplesPerParticipant
            let devices = try FedProxSynthetic.datasets(generator, seed: seed)
            natural = devices.enumerated().map { ("device-\($0.offset + 1)", $0.element) }
        }

        var parts: [(String, Dataset)]
        let scheme = config.partitioning.scheme
        var summary = ""
        if scheme == .natural {
            guard !natural.isEmpty else {
                throw DataError(
                    .invalidArgument, "partitioning 'natural' needs per-site files or a per-device generator")
            }
            parts = natural
            summary =
                PartitionSummary(
                    scheme: "natural", clientIndices: Self.indexRanges(parts.map(\.1.count)),
                    labels: parts.flatMap { $0.1.classIndices }, classCount: parts.first?.1.classCount
                ).description
        } else {
            let all = try pooled ?? Dataset.concatenating(natural.map(\.1))
            let partitionScheme: PartitionScheme =
                switch scheme {
                case .iid, .natural: .iid
                case .dirichlet: .dirichlet(alpha: config.partitioning.alpha)
                case .shards: .shards(perClient: config.partitioning.shardsPerParticipant)
                case .powerLaw: .powerLaw(exponent: config.partitioning.exponent)
                }
            let partition = try Partitioner.partition(
                all, clients: config.participants, scheme: partitionScheme, seed: seed)
            parts = partition.datasets(from: all).enumerated().map { ("site-\($0.offset + 1)", $0.element) }
            summary = partition.summary.description
        }

        var sites: [Site] = []
        for (index, (name, data)) in parts.enumerated() {
            let local = try LocalData(
                splitting: data, testFraction: dataset.testFraction, standardise: dataset.standardise,
                seed: seed &+ UInt64(index))
            sites.append(Site(name: name, data: local))
        }
        guard let first = sites.first?.data.train else {
            throw DataError(.invalidArgument, "the experiment has no participants with data")
        }
        let classes = sites.compactMap { $0.data.train.classCount }.max() ?? 2
        return ExperimentData(
            sites: sites, inputs: first.featuresPerSample, classes: classes, sampleShape: first.sampleShape,
            summary: summary)
    }

    static func indexRanges(_ sizes: [Int]) -> [[Int]] {
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return Array(start..<(start + size))
        }
    }
}
