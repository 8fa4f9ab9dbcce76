import Foundation
import TesseraTensor

/// How a centralised dataset is divided among simulated clients.
///
/// Why these four: they are the standard ways the federated-learning literature manufactures
/// heterogeneity from one dataset, each isolating one effect:
/// - ``iid``: the control — every client sees the global distribution;
/// - ``dirichlet(alpha:minimumPerClient:)``: label-distribution skew of tunable strength
///   (Hsu et al. 2019; the scheme of NIID-Bench, Li et al. 2022);
/// - ``shards(perClient:)``: McMahan et al.'s (2017) pathological non-IID split, at most k
///   labels per client;
/// - ``powerLaw(exponent:minimumPerClient:)``: quantity skew — very unequal client sizes with
///   IID labels.
public enum PartitionScheme: Sendable, Hashable, CustomStringConvertible {
    /// Equal sizes (±1), samples dealt at random.
    case iid
    /// For each class, the share of each client is drawn from Dirichlet(α, …, α): α → 0 gives
    /// one class per client, α → ∞ the global mix. Clients end with at least
    /// `minimumPerClient` samples (see ``Partitioner/dirichlet(_:clients:alpha:minimumPerClient:seed:)``).
    case dirichlet(alpha: Double, minimumPerClient: Int = 1)
    /// Samples are cut into `clients · perClient` label-pure shards; each client gets
    /// `perClient` of them at random.
    case shards(perClient: Int)
    /// Client sizes follow a rank-size power law: the r-th largest client holds a share
    /// ∝ r^(−exponent) of the data (after a floor of `minimumPerClient`); labels are IID.
    case powerLaw(exponent: Double, minimumPerClient: Int = 1)

    public var description: String {
        switch self {
        case .iid: "iid"
        case .dirichlet(let alpha, let minimum): "dirichlet(alpha: \(alpha), minimumPerClient: \(minimum))"
        case .shards(let k): "shards(perClient: \(k))"
        case .powerLaw(let exponent, let minimum): "powerLaw(exponent: \(exponent), minimumPerClient: \(minimum))"
        }
    }
}

/// The result of partitioning: which samples each client holds, and a summary to print.
public struct Partition: Sendable {
    /// The dataset indices of each client's samples; disjoint, and together every index once.
    public var clientIndices: [[Int]]
    /// Sizes and label histograms.
    public var summary: PartitionSummary

    /// Each client's samples as a dataset (copies the rows).
    public func datasets(from dataset: Dataset) -> [Dataset] {
        clientIndices.map { dataset.subset(indices: $0) }
    }
}

/// Sizes and label histograms of a partition, with the heterogeneity measures used to judge
/// it, and a printable table (``description``).
public struct PartitionSummary: Sendable, Hashable, CustomStringConvertible {
    /// The scheme that produced the partition (for the table's title).
    public var scheme: String
    /// The number of samples of each client.
    public var sizes: [Int]
    /// `labelHistograms[client][class]`; empty rows for regression data.
    public var labelHistograms: [[Int]]

    /// Summarises client index lists over `labels` (class indices, or `nil` for regression).
    public init(scheme: String, clientIndices: [[Int]], labels: [Int]?, classCount: Int?) {
        self.scheme = scheme
        sizes = clientIndices.map(\.count)
        if let labels, let classCount {
            labelHistograms = clientIndices.map { indices in
                var histogram = [Int](repeating: 0, count: classCount)
                for i in indices { histogram[labels[i]] += 1 }
                return histogram
            }
        } else {
            labelHistograms = clientIndices.map { _ in [] }
        }
    }

    /// The total number of samples.
    public var total: Int { sizes.reduce(0, +) }

    /// The number of distinct labels each client holds.
    public var labelsPerClient: [Int] { labelHistograms.map { $0.filter { $0 > 0 }.count } }

    /// The mean over clients of the entropy of the client's label distribution, divided by
    /// `log(classCount)`: 1 means every client is balanced over all classes, 0 that every
    /// client holds a single class. Empty clients are skipped.
    public var meanNormalizedLabelEntropy: Double {
        guard let classes = labelHistograms.first?.count, classes > 1 else { return 0 }
        let entropies = labelHistograms.compactMap { histogram -> Double? in
            let n = Double(histogram.reduce(0, +))
            guard n > 0 else { return nil }
            let h = histogram.reduce(0.0) { acc, c in c == 0 ? acc : acc - Double(c) / n * log(Double(c) / n) }
            return h / log(Double(classes))
        }
        return entropies.isEmpty ? 0 : entropies.reduce(0, +) / Double(entropies.count)
    }

    /// The mean over clients of the total-variation distance between the client's label
    /// distribution and the global one: 0 for a perfectly IID split, close to 1 for disjoint
    /// labels. Empty clients are skipped.
    public var meanLabelDistanceFromGlobal: Double {
        guard let classes = labelHistograms.first?.count, classes > 0 else { return 0 }
        var global = [Double](repeating: 0, count: classes)
        for histogram in labelHistograms { for c in 0..<classes { global[c] += Double(histogram[c]) } }
        let total = global.reduce(0, +)
        guard total > 0 else { return 0 }
        let distances = labelHistograms.compactMap { histogram -> Double? in
            let n = Double(histogram.reduce(0, +))
            guard n > 0 else { return nil }
            return 0.5 * (0..<classes).reduce(0.0) { $0 + abs(Double(histogram[$1]) / n - global[$1] / total) }
        }
        return distances.isEmpty ? 0 : distances.reduce(0, +) / Double(distances.count)
    }

    /// The Gini coefficient of the client sizes: 0 for equal sizes, towards 1 when one client
    /// holds nearly everything.
    public var sizeGini: Double {
        let sorted = sizes.sorted().map(Double.init)
        let n = Double(sorted.count)
        let total = sorted.reduce(0, +)
        guard n > 1, total > 0 else { return 0 }
        let weighted = sorted.enumerated().reduce(0.0) { $0 + Double($1.offset + 1) * $1.element }
        return (2 * weighted) / (n * total) - (n + 1) / n
    }

    /// A fixed-width table: one row per client with its size, its number of labels and its
    /// label histogram, then the totals and the heterogeneity measures.
    public var description: String {
        let classes = labelHistograms.first?.count ?? 0
        let sizeWidth = max(4, String(sizes.max() ?? 0).count)
        let cellWidth = max(
            3, String(labelHistograms.flatMap { $0 }.max() ?? 0).count, String(max(0, classes - 1)).count)
        let clientWidth = max(6, String(sizes.count - 1).count)
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var lines = ["partition \(scheme): \(sizes.count) clients, \(total) samples"]
        var header = pad("client", clientWidth) + " " + pad("n", sizeWidth)
        if classes > 0 {
            header += " " + pad("labels", 6) + " |"
            for c in 0..<classes { header += " " + pad(String(c), cellWidth) }
        }
        lines.append(header)
        lines.append(String(repeating: "-", count: header.count))
        for (client, size) in sizes.enumerated() {
            var line = pad(String(client), clientWidth) + " " + pad(String(size), sizeWidth)
            if classes > 0 {
                line += " " + pad(String(labelsPerClient[client]), 6) + " |"
                for count in labelHistograms[client] { line += " " + pad(String(count), cellWidth) }
            }
            lines.append(line)
        }
        lines.append(String(repeating: "-", count: header.count))
        var stats = "sizes: min \(sizes.min() ?? 0), max \(sizes.max() ?? 0), Gini \(String(format: "%.3f", sizeGini))"
        if classes > 0 {
            stats +=
                "; label entropy (normalised, mean) \(String(format: "%.3f", meanNormalizedLabelEntropy)); distance from global labels (TV, mean) \(String(format: "%.3f", meanLabelDistanceFromGlobal))"
        }
        lines.append(stats)
        return lines.joined(separator: "\n")
    }
}
