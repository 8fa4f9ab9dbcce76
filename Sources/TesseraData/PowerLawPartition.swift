import Foundation
import TesseraTensor

extension Partitioner {
    /// Quantity skew with IID labels: client sizes follow a rank-size power law.
    ///
    /// After a floor of `minimumPerClient` samples each, the rest is shared so that the
    /// client of rank r (1 = largest) gets a share ∝ r^(−exponent) — Zipf's form of a
    /// power law, the shape of the device sizes in LEAF and FedProx. The ranks are dealt to the
    /// clients at random, and the samples are a seeded shuffle, so labels stay IID. Exponent
    /// 0 gives equal sizes; 1 makes the largest client about `clients / H(clients)` times the
    /// mean; 2 puts most of the data on a handful of clients. Sizes are deterministic given the
    /// exponent (the seed only decides which client gets which rank), so the skew a test or
    /// experiment asks for is the skew it gets.
    public static func powerLaw(
        _ dataset: Dataset, clients: Int, exponent: Double, minimumPerClient: Int = 1, seed: UInt64
    ) throws -> Partition {
        let scheme = PartitionScheme.powerLaw(exponent: exponent, minimumPerClient: minimumPerClient)
        try checkClients(clients, minimum: minimumPerClient, dataset: dataset, scheme: scheme)
        guard exponent >= 0, exponent.isFinite else {
            throw DataError(.invalidArgument, "\(scheme): the exponent must be ≥ 0, got \(exponent)")
        }
        var rng = TesseraRandom(seed: seed)
        var ranks = Array(1...clients)
        rng.shuffle(&ranks)
        let floor = max(0, minimumPerClient)
        let shares = apportion(dataset.count - clients * floor, weights: ranks.map { pow(Double($0), -exponent) })
        var order = Array(0..<dataset.count)
        rng.shuffle(&order)
        var lists: [[Int]] = []
        var start = 0
        for share in shares {
            lists.append(Array(order[start..<start + floor + share]))
            start += floor + share
        }
        return finish(lists, scheme: scheme, dataset: dataset)
    }
}
