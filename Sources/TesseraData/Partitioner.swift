import TesseraTensor

/// Divides a labelled dataset among simulated clients; every method is deterministic for a
/// seed, returns disjoint index lists that together cover every sample once (each list in
/// ascending order), and a ``PartitionSummary``.
///
/// One file per scheme: `IIDPartition.swift`, `DirichletPartition.swift`,
/// `ShardPartition.swift`, `PowerLawPartition.swift`.
public enum Partitioner {
    /// Partitions `dataset` among `clients` with `scheme`.
    public static func partition(
        _ dataset: Dataset, clients: Int, scheme: PartitionScheme, seed: UInt64
    ) throws
        -> Partition
    {
        switch scheme {
        case .iid:
            return try iid(dataset, clients: clients, seed: seed)
        case .dirichlet(let alpha, let minimum):
            return try dirichlet(dataset, clients: clients, alpha: alpha, minimumPerClient: minimum, seed: seed)
        case .shards(let k):
            return try shards(dataset, clients: clients, perClient: k, seed: seed)
        case .powerLaw(let exponent, let minimum):
            return try powerLaw(dataset, clients: clients, exponent: exponent, minimumPerClient: minimum, seed: seed)
        }
    }

    static func finish(_ lists: [[Int]], scheme: PartitionScheme, dataset: Dataset) -> Partition {
        let sorted = lists.map { $0.sorted() }
        let summary = PartitionSummary(
            scheme: scheme.description, clientIndices: sorted,
            labels: dataset.isClassification ? dataset.classIndices : nil, classCount: dataset.classCount)
        return Partition(clientIndices: sorted, summary: summary)
    }

    static func checkClients(_ clients: Int, minimum: Int, dataset: Dataset, scheme: PartitionScheme) throws {
        guard clients >= 1 else {
            throw DataError(.invalidArgument, "\(scheme): the number of clients must be at least 1, got \(clients)")
        }
        guard minimum >= 0 else {
            throw DataError(.invalidArgument, "\(scheme): the minimum per client must be ≥ 0, got \(minimum)")
        }
        guard dataset.count >= clients * max(1, minimum) else {
            throw DataError(
                .invalidArgument,
                "\(scheme): \(dataset.count) samples cannot give \(clients) clients at least \(max(1, minimum)) each")
        }
    }

    static func requireClasses(_ dataset: Dataset, scheme: PartitionScheme) throws -> Int {
        guard let classCount = dataset.classCount else {
            throw DataError(
                .invalidArgument, "\(scheme) partitions by label and needs a classification dataset (classCount is nil)"
            )
        }
        return classCount
    }

    /// Splits `total` into parts proportional to `weights` that sum exactly to `total`
    /// (largest-remainder rounding; ties go to the lower index).
    static func apportion(_ total: Int, weights: [Double]) -> [Int] {
        let sum = weights.reduce(0, +)
        guard total > 0, sum > 0 else { return [Int](repeating: 0, count: weights.count) }
        let ideal = weights.map { Double(total) * $0 / sum }
        var parts = ideal.map { Int($0.rounded(.down)) }
        var left = total - parts.reduce(0, +)
        let order = ideal.indices.sorted {
            let a = ideal[$0] - Double(parts[$0])
            let b = ideal[$1] - Double(parts[$1])
            return a != b ? a > b : $0 < $1
        }
        var k = 0
        while left > 0 {
            parts[order[k % order.count]] += 1
            left -= 1
            k += 1
        }
        return parts
    }
}
